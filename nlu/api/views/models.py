"""Intent classifier versions (scope admin-data): train, read, promote, roll back."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.idempotency import run_idempotent
from integrations.openapi import ERRORS, IDEMPOTENCY_KEY_HEADER
from nlu import selectors, training
from nlu.api import examples as x
from nlu.api import serializers as s
from nlu.api.pagination import CheckedCursorPage
from nlu.api.views.base import AdminDataScoped
from nlu.exceptions import NluModelNotFound
from nlu.models import NluModel


def _model(model_id: int) -> NluModel:
    model = selectors.nlu_model_get(model_id)
    if model is None:
        raise NluModelNotFound(f"No NLU model has id {model_id}")
    return model


class ModelPage(CheckedCursorPage):
    ordering = "-id"


class NluModelListCreateApi(generics.ListAPIView, AdminDataScoped):
    """The intent classifiers, newest first (which one serves, how each scored); or train one."""

    pagination_class = ModelPage
    serializer_class = s.NluModelOutputSerializer

    def get_queryset(self) -> QuerySet[NluModel]:
        return selectors.nlu_model_list()

    @extend_schema(
        operation_id="nlu_model_list",
        responses={200: s.NluModelOutputSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("Models", value=x.MODEL_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="nlu_model_train",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=None,
        responses={202: s.NluModelOutputSerializer, **ERRORS},
        description="Train a classifier on the examples of the active intents, in the "
        "background: poll the model until its status is ready (or failed, with the reason in "
        "error), read its metrics, then promote it. It does not serve until promoted.",
        examples=[
            OpenApiExample(
                "Training", value=x.TRAINING_EXAMPLE, response_only=True, status_codes=["202"]
            )
        ],
    )
    def post(self, request: Request) -> Response:
        return run_idempotent(request, lambda: self._train(request))

    def _train(self, request: Request) -> Response:
        model = training.nlu_model_train_start(user=request.user)
        return Response(s.NluModelOutputSerializer(model).data, status=status.HTTP_202_ACCEPTED)


class NluModelDetailApi(AdminDataScoped):
    @extend_schema(
        operation_id="nlu_model_retrieve",
        responses={200: s.NluModelDetailSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "A model",
                value={
                    **x.MODEL_EXAMPLE,
                    "per_intent": {
                        "order_meal": {"precision": 0.97, "recall": 0.95, "f1": 0.96, "support": 40}
                    },
                },
                response_only=True,
            ),
            x.error("nlu_model_not_found", "No NLU model has id 9", 404),
        ],
    )
    def get(self, request: Request, model_id: int) -> Response:
        return Response(s.NluModelDetailSerializer(_model(model_id)).data)


class NluModelPromoteApi(AdminDataScoped):
    @extend_schema(
        operation_id="nlu_model_promote",
        request=None,
        responses={200: s.NluModelOutputSerializer, **ERRORS},
        description="Make this model the one that classifies messages; the one serving until "
        "now stops. Every server process switches within seconds.",
        examples=[
            OpenApiExample("Serving", value=x.MODEL_EXAMPLE, response_only=True),
            x.error("nlu_model_not_ready", "NLU model v8 is training", 409),
        ],
    )
    def post(self, request: Request, model_id: int) -> Response:
        model = training.nlu_model_promote(_model(model_id), user=request.user)
        return Response(s.NluModelOutputSerializer(model).data)


class NluModelRollbackApi(AdminDataScoped):
    @extend_schema(
        operation_id="nlu_model_rollback",
        request=None,
        responses={200: s.NluModelOutputSerializer, **ERRORS},
        description="Serve again the model that served before the current one.",
        examples=[
            OpenApiExample("Serving again", value=x.MODEL_EXAMPLE, response_only=True),
            x.error(
                "nlu_no_previous_model",
                "No earlier model has served: there is nothing to roll back to",
                409,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        model = training.nlu_model_rollback(user=request.user)
        return Response(s.NluModelOutputSerializer(model).data)
