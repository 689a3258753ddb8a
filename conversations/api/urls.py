"""Conversations API routes; chatsite/urls.py mounts them under /api/ (namespace "api")."""

from __future__ import annotations

from django.urls import path

from conversations.api import views

urlpatterns = [
    path(
        "conversations/<uuid:conversation_id>/state",
        views.ConversationStateApi.as_view(),
        name="conversation-state",
    ),
    path(
        "conversations/<uuid:conversation_id>/pickup-code",
        views.PickupCodeCreateApi.as_view(),
        name="pickup-code-create",
    ),
    path("pickup", views.PickupRedeemApi.as_view(), name="pickup-redeem"),
]
