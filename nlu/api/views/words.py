"""Sensitive words (scope admin-data), through nlu.moderation.services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api import query_params
from integrations.idempotency import run_idempotent
from integrations.openapi import ERRORS, IDEMPOTENCY_KEY_HEADER
from nlu.api import examples as x
from nlu.api import serializers as s
from nlu.api.pagination import CheckedCursorPage
from nlu.api.views.base import AdminDataScoped
from nlu.exceptions import SensitiveWordExists, SensitiveWordNotFound
from nlu.models import SensitiveWord
from nlu.moderation import selectors as word_selectors
from nlu.moderation import services as word_services


def _word_saved(write: Callable[[], SensitiveWord]) -> SensitiveWord:
    """Run a word write: "listed already" is a conflict (409); other refusals stay 400s."""
    try:
        return write()
    except ValidationError as exc:
        errors = getattr(exc, "error_dict", {})
        if {error.code for field in errors.values() for error in field} == {"duplicate"}:
            raise SensitiveWordExists(exc.messages[0], extra={"fields": exc.message_dict}) from exc
        raise


def _word(word_id: int) -> SensitiveWord:
    word = word_selectors.sensitive_word_get(word_id)
    if word is None:
        raise SensitiveWordNotFound(f"No sensitive word has id {word_id}")
    return word


class WordPage(CheckedCursorPage):
    ordering = "id"


class SensitiveWordListCreateApi(generics.ListAPIView, AdminDataScoped):
    """The words moderation blocks, masks or flags, oldest first; or add one."""

    pagination_class = WordPage
    serializer_class = s.SensitiveWordOutputSerializer

    def get_queryset(self) -> QuerySet[SensitiveWord]:
        params = query_params(s.SensitiveWordQuerySerializer, self.request)
        return word_selectors.sensitive_word_list(
            category=params.get("category"),
            action=params.get("action"),
            is_active=params.get("active"),
            q=params.get("q", ""),
        )

    @extend_schema(
        operation_id="sensitive_word_list",
        parameters=[s.SensitiveWordQuerySerializer],
        responses={200: s.SensitiveWordOutputSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("Words", value=x.WORD_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="sensitive_word_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=s.SensitiveWordInputSerializer,
        responses={201: s.SensitiveWordOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Block an ad",
                value={
                    "word": "spam offer",
                    "category": "ads",
                    "action": "block",
                    "language": "en",
                },
                request_only=True,
            ),
            OpenApiExample("Added", value=x.WORD_EXAMPLE, response_only=True, status_codes=["201"]),
            x.WORD_DUPLICATE,
        ],
    )
    def post(self, request: Request) -> Response:
        return run_idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        payload = s.SensitiveWordInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        word = _word_saved(
            lambda: word_services.sensitive_word_create(**payload.validated_data, source="api")
        )
        return Response(s.SensitiveWordOutputSerializer(word).data, status=status.HTTP_201_CREATED)


class SensitiveWordDetailApi(AdminDataScoped):
    """One word: read, change or delete it (every process's matcher follows within seconds)."""

    @extend_schema(
        operation_id="sensitive_word_retrieve",
        responses={200: s.SensitiveWordOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample("A word", value=x.WORD_EXAMPLE, response_only=True),
            x.error("sensitive_word_not_found", "No sensitive word has id 9", 404),
        ],
    )
    def get(self, request: Request, word_id: int) -> Response:
        return Response(s.SensitiveWordOutputSerializer(_word(word_id)).data)

    @extend_schema(
        operation_id="sensitive_word_update",
        request=s.SensitiveWordInputSerializer,
        responses={200: s.SensitiveWordOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample("Mask instead", value={"action": "mask"}, request_only=True),
            OpenApiExample(
                "Changed", value={**x.WORD_EXAMPLE, "action": "mask"}, response_only=True
            ),
            x.WORD_DUPLICATE,
        ],
    )
    def patch(self, request: Request, word_id: int) -> Response:
        payload = s.SensitiveWordInputSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        word = _word_saved(
            lambda: word_services.sensitive_word_update(
                sensitive_word=_word(word_id), **payload.validated_data
            )
        )
        return Response(s.SensitiveWordOutputSerializer(word).data)

    @extend_schema(
        operation_id="sensitive_word_destroy",
        responses={204: None, **ERRORS},
        examples=[x.error("sensitive_word_not_found", "No sensitive word has id 9", 404)],
    )
    def delete(self, request: Request, word_id: int) -> Response:
        word_services.sensitive_word_delete(sensitive_word=_word(word_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
