"""POST /nlu/parse (scope nlu): the chat's reading of a text, nothing stored."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.openapi import ERRORS
from nlu.api import examples as x
from nlu.api import serializers as s
from nlu.api.views.base import NluScoped
from nlu.parse import nlu_parse


class NluParseApi(NluScoped):
    """Read a text's intent and slot values the way the chat reads a message; nothing is stored."""

    @extend_schema(
        operation_id="nlu_parse",
        request=s.ParseInputSerializer,
        responses={200: s.ParseOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "A message", value={"text": "I'd like two classic sets"}, request_only=True
            ),
            OpenApiExample("Parsed", value=x.PARSE_EXAMPLE, response_only=True),
            OpenApiExample(
                "Not sure: the LLM decided",
                value={
                    "text": "where's my food",
                    "intent": {"name": "check_order", "confidence": 0.38},
                    "ranking": [
                        {"name": "order_meal", "confidence": 0.41},
                        {"name": "check_order", "confidence": 0.38},
                        {"name": "goodbye", "confidence": 0.1},
                    ],
                    "entities": [],
                    "source": "llm",
                    "model_version": 7,
                },
                response_only=True,
            ),
            x.error("message_too_long", "The text is over 4000 characters", 413),
        ],
    )
    def post(self, request: Request) -> Response:
        payload = s.ParseInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = async_to_sync(nlu_parse)(text=payload.validated_data["text"])
        return Response(s.ParseOutputSerializer.from_result(result))
