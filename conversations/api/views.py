"""Conversations API: thin views, one selector or service call each."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatsite.api import ErrorSerializer, query_params
from conversations import pickup, selectors
from conversations.api import serializers
from conversations.exceptions import ConversationNotFound
from conversations.views import actor_from_request


def _not_found() -> ConversationNotFound:
    return ConversationNotFound("No such conversation", code="conversation_not_found")


ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 429: ErrorSerializer}


class ConversationStateApi(APIView):
    """A conversation's dialogue state, masked slots and latest messages."""

    @extend_schema(
        operation_id="conversation_state",
        parameters=[
            OpenApiParameter(
                "messages",
                int,
                description=f"How many of the latest messages (default "
                f"{serializers.MESSAGES_DEFAULT}, at most {serializers.MESSAGES_MAX})",
            )
        ],
        responses={200: serializers.StateOutputSerializer, **ERRORS},
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        params = query_params(serializers.StateQuerySerializer, request)
        actor = actor_from_request(request, create_session=False)
        data = selectors.conversation_state_for_actor(
            conversation_id, actor, message_limit=params["messages"]
        )
        if data is None:
            raise _not_found()
        return Response(serializers.StateOutputSerializer(data).data)


class PickupCodeCreateApi(APIView):
    """Make a one-time code that opens this conversation on another device (owner only)."""

    @extend_schema(
        operation_id="pickup_code_create",
        request=None,
        responses={201: serializers.PickupCodeOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        actor = actor_from_request(request, create_session=False)
        conversation = selectors.conversation_get_for_actor(conversation_id, actor)
        if conversation is None:
            raise _not_found()
        if not selectors.actor_owns(conversation, actor):
            raise pickup.NotOwner("Only the conversation's owner can make a pickup code")
        code, expires_at = pickup.pickup_code_create(conversation=conversation)
        body = serializers.PickupCodeOutputSerializer({"code": code, "expires_at": expires_at})
        return Response(body.data, status=status.HTTP_201_CREATED)


class PickupRedeemApi(APIView):
    """Redeem a pickup code: this browser session may then open the conversation."""

    @extend_schema(
        operation_id="pickup_redeem",
        request=serializers.PickupRedeemInputSerializer,
        responses={200: serializers.PickupRedeemOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        payload = serializers.PickupRedeemInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        actor = actor_from_request(request, create_session=True)
        conversation = pickup.pickup_code_redeem(code=payload.validated_data["code"], actor=actor)
        url = reverse("conversations:chat", kwargs={"conversation_id": conversation.public_id})
        body = serializers.PickupRedeemOutputSerializer(
            {"conversation_id": conversation.public_id, "url": url}
        )
        return Response(body.data)
