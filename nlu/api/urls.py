"""NLU API routes (parse; intents, examples, sensitive words and models for admin-data keys)."""

from __future__ import annotations

from django.urls import URLPattern, path, register_converter

from nlu.api import views


class IntentNameConverter:
    """An intent's name as nlu.models.identifier_validator allows it; anything else is a 404
    before any query (a NUL in a name would otherwise reach PostgreSQL)."""

    regex = r"[a-z][a-z0-9_]{0,99}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(IntentNameConverter, "intent_name")

urlpatterns: list[URLPattern] = [
    path("nlu/parse", views.NluParseApi.as_view(), name="nlu-parse"),
    path("intents", views.IntentListCreateApi.as_view(), name="intent-list"),
    path("intents/<intent_name:name>", views.IntentDetailApi.as_view(), name="intent-detail"),
    path(
        "intents/<intent_name:name>/examples",
        views.IntentExampleListCreateApi.as_view(),
        name="intent-example-list",
    ),
    path(
        "intents/<intent_name:name>/examples/<int:example_id>",
        views.IntentExampleDetailApi.as_view(),
        name="intent-example-detail",
    ),
    path("sensitive-words", views.SensitiveWordListCreateApi.as_view(), name="sensitive-word-list"),
    path(
        "sensitive-words/<int:word_id>",
        views.SensitiveWordDetailApi.as_view(),
        name="sensitive-word-detail",
    ),
    path("nlu/models", views.NluModelListCreateApi.as_view(), name="nlu-model-list"),
    path("nlu/models/rollback", views.NluModelRollbackApi.as_view(), name="nlu-model-rollback"),
    path("nlu/models/<int:model_id>", views.NluModelDetailApi.as_view(), name="nlu-model-detail"),
    path(
        "nlu/models/<int:model_id>/promote",
        views.NluModelPromoteApi.as_view(),
        name="nlu-model-promote",
    ),
]
