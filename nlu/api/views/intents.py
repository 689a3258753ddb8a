"""Intents and their examples (scope admin-data), with the admin's validation."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.idempotency import run_idempotent
from integrations.openapi import ERRORS, IDEMPOTENCY_KEY_HEADER
from nlu import selectors, services
from nlu.api import examples as x
from nlu.api import serializers as s
from nlu.api.pagination import CheckedCursorPage
from nlu.api.views.base import INTENT_NAME, AdminDataScoped, intent_or_404
from nlu.exceptions import IntentExampleNotFound
from nlu.exchange.rows import ExampleRow
from nlu.exchange.services import examples_import
from nlu.models import Intent, IntentExample

# --- intents ----------------------------------------------------------------------------------


class IntentPage(CheckedCursorPage):
    ordering = "name"


class IntentListCreateApi(generics.ListAPIView, AdminDataScoped):
    """Every intent with its slots and templates, by name; or add one."""

    pagination_class = IntentPage
    serializer_class = s.IntentOutputSerializer

    def get_queryset(self) -> QuerySet[Intent]:
        return selectors.intent_list()

    @extend_schema(
        operation_id="intent_list",
        responses={200: s.IntentOutputSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("Intents", value=x.INTENT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="intent_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=s.IntentInputSerializer,
        responses={201: s.IntentOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "An intent with a slot", value=x.INTENT_INPUT_EXAMPLE, request_only=True
            ),
            OpenApiExample(
                "Created", value=x.INTENT_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            x.VALIDATION_ERROR,
            x.error("intent_exists", "An intent named 'order_meal' exists already", 409),
        ],
    )
    def post(self, request: Request) -> Response:
        return run_idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        payload = s.IntentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        intent = services.intent_create(**payload.validated_data)
        return Response(s.IntentOutputSerializer(intent).data, status=status.HTTP_201_CREATED)


class IntentDetailApi(AdminDataScoped):
    """One intent: read it, change it (same validation as the admin), delete it."""

    @extend_schema(
        operation_id="intent_retrieve",
        parameters=[INTENT_NAME],
        responses={200: s.IntentOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample("An intent", value=x.INTENT_EXAMPLE, response_only=True),
            x.error("intent_not_found", "No intent is named 'order_pizza'", 404),
        ],
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(s.IntentOutputSerializer(intent_or_404(name)).data)

    @extend_schema(
        operation_id="intent_update",
        parameters=[INTENT_NAME],
        request=s.IntentInputSerializer,
        responses={200: s.IntentOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Switch to model replies",
                value={"reply_mode": "llm", "description": "Food orders and delivery"},
                request_only=True,
            ),
            OpenApiExample(
                "Changed",
                value={**x.INTENT_EXAMPLE, "reply_mode": "llm"},
                response_only=True,
            ),
            x.VALIDATION_ERROR,
        ],
    )
    def patch(self, request: Request, name: str) -> Response:
        payload = s.IntentInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        intent = services.intent_update(intent=intent_or_404(name), **payload.validated_data)
        return Response(s.IntentOutputSerializer(intent).data)

    @extend_schema(
        operation_id="intent_destroy",
        parameters=[INTENT_NAME],
        responses={204: None, **ERRORS},
        examples=[x.error("intent_not_found", "No intent is named 'order_pizza'", 404)],
    )
    def delete(self, request: Request, name: str) -> Response:
        services.intent_delete(intent=intent_or_404(name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- examples ---------------------------------------------------------------------------------


class ExamplePage(CheckedCursorPage):
    ordering = "id"


class IntentExampleListCreateApi(generics.ListAPIView, AdminDataScoped):
    """An intent's examples (the classifier's training data), oldest first; or add some."""

    pagination_class = ExamplePage
    serializer_class = s.ExampleOutputSerializer

    def get_queryset(self) -> QuerySet[IntentExample]:
        return selectors.intent_example_list(intent_or_404(self.kwargs["name"]))

    @extend_schema(
        operation_id="intent_example_list",
        parameters=[INTENT_NAME],
        responses={200: s.ExampleOutputSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("Examples", value=x.EXAMPLE_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="intent_example_create",
        parameters=[INTENT_NAME, IDEMPOTENCY_KEY_HEADER],
        request=s.ExamplesInputSerializer,
        responses={
            201: s.ExamplesAddedOutputSerializer,
            200: s.ExamplesAddedOutputSerializer,
            **ERRORS,
        },
        description="One example, or a list of up to 500, cleaned as the importer cleans them: "
        "duplicates (stored already, or repeated) are skipped and invalid texts reported; "
        "201 when something was added, else 200.",
        examples=[
            OpenApiExample("One", value={"text": "two classic sets please"}, request_only=True),
            OpenApiExample(
                "Several, one with an entity",
                value=[
                    {"text": "I'd like a pizza"},
                    {
                        "text": "two classic sets please",
                        "entities": [{"start": 4, "end": 11, "entity": "meal", "value": "classic"}],
                    },
                ],
                request_only=True,
            ),
            OpenApiExample(
                "Added",
                value={
                    "added": 1,
                    "duplicates": 1,
                    "invalid": [{"index": 2, "reason": "the text is empty", "text": " "}],
                    "notes": [],
                },
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "Nothing new",
                value={"added": 0, "duplicates": 1, "invalid": [], "notes": []},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def post(self, request: Request, name: str) -> Response:
        return run_idempotent(request, lambda: self._add(request, name))

    def _add(self, request: Request, name: str) -> Response:
        intent = intent_or_404(name)
        items = s.ExamplesInputSerializer.validated(request.data)
        rows = [
            ExampleRow(line=i, text=item["text"], intent=intent.name, entities=item["entities"])
            for i, item in enumerate(items, start=1)
        ]
        report = examples_import(rows, create_intents=False, dry_run=False)
        code = status.HTTP_201_CREATED if report.added else status.HTTP_200_OK
        return Response(s.ExamplesAddedOutputSerializer.from_report(report, items), status=code)


class IntentExampleDetailApi(AdminDataScoped):
    @extend_schema(
        operation_id="intent_example_destroy",
        parameters=[INTENT_NAME],
        responses={204: None, **ERRORS},
        examples=[x.error("intent_example_not_found", "Intent order_meal has no example 9", 404)],
    )
    def delete(self, request: Request, name: str, example_id: int) -> Response:
        intent = intent_or_404(name)
        example = selectors.intent_example_get(intent, example_id)
        if example is None:
            raise IntentExampleNotFound(f"Intent {intent.name} has no example {example_id}")
        services.intent_example_delete(example=example)
        return Response(status=status.HTTP_204_NO_CONTENT)
