"""Conversations API: thin views, one selector or service call each.

The chat page's own calls (state, pickup) act for the browser session; the integration API acts
for the API key's owner (the tenant), so a key sees only its owner's conversations and anything
else is "not found". Message posts wait for the reply without holding a thread: the turn runs
on the event loop exactly as a WebSocket turn does, and the response streams when it is over.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, generics, permissions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chatsite.api import CursorPage, InvalidParameter, query_params
from conversations import enduser, pickup, selectors, services
from conversations.api import serializers
from conversations.api.sse import (
    EventStreamRenderer,
    event,
    event_stream,
    resume_point,
    wait_for_end,
    wants_stream,
)
from conversations.exceptions import ConversationNotFound
from conversations.models import Conversation, Message, MessageSource
from conversations.turns import TurnAck, turn_submit
from conversations.views import actor_from_request
from integrations.authentication import HasScope, key_name
from integrations.idempotency import (
    HEADER as IDEMPOTENCY_HEADER,
)
from integrations.idempotency import (
    fingerprint,
    idempotency_abandon,
    idempotency_claim,
    idempotency_finish,
    run_idempotent,
)
from integrations.models import ApiKey, Scope
from integrations.openapi import ERRORS, IDEMPOTENCY_KEY_HEADER


def _not_found() -> ConversationNotFound:
    return ConversationNotFound("No such conversation", code="conversation_not_found")


class ChatAccess(permissions.BasePermission):
    """An API key with the chat scope, a signed-in user, or a browser session.

    What each may see is the selectors' business (their own conversations only); a request
    with none of the three has nobody to act for.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            return HasScope().has_permission(request, _ChatScope())
        if request.user.is_authenticated or request.session.session_key:
            return True
        raise exceptions.NotAuthenticated(
            "Send an API key (Authorization: Bearer <key>) or use the chat page's session",
            code="not_authenticated",
        )


class _ChatScope:
    required_scope = Scope.CHAT


def _conversation(request: Request, conversation_id: uuid.UUID) -> Conversation:
    actor = actor_from_request(request, create_session=False)
    conversation = selectors.conversation_get_for_actor(conversation_id, actor)
    if conversation is None:
        raise _not_found()
    return conversation


CONVERSATION_EXAMPLE = {
    "id": "6f1c2e7a-3b4d-4c5e-8f90-1a2b3c4d5e6f",
    "title": "Order a meal",
    "end_user": "crm-10442",
    "state": "waiting_input",
    "intent": "",
    "created_at": "2026-11-22T09:30:00Z",
    "last_active": "2026-11-22T09:31:12Z",
    "closed_at": None,
}
MESSAGE_EXAMPLE = {
    "id": "0b6d6a43-55a2-4f6e-9a0f-3f1f2f0b9d11",
    "role": "user",
    "text": "I'd like two classic sets, my number is 139****5678",
    "sequence": 1,
    "status": "complete",
    "is_fallback": False,
    "created_at": "2026-11-22T09:31:10Z",
    "client_id": "5f0e8c3a-9d2b-4d61-9c1e-2a7b8c9d0e1f",
    "source": "api",
    "reply_to": None,
    "intent": "order_meal",
    "error_code": "",
    "token_count": 0,
    "ttft_ms": None,
    "total_ms": None,
}
REPLY_EXAMPLE = {
    **MESSAGE_EXAMPLE,
    "id": "7a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "role": "assistant",
    "text": "Two classic sets. Where should we deliver them?",
    "sequence": 2,
    "client_id": None,
    "reply_to": MESSAGE_EXAMPLE["id"],
    "intent": "",
    "token_count": 11,
    "ttft_ms": 182,
    "total_ms": 640,
}
STATE_MESSAGE_FIELDS = ("id", "role", "text", "sequence", "status", "is_fallback", "created_at")
END_USER_PATH = OpenApiParameter(
    "end_user",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000/]+$"},
    OpenApiParameter.PATH,
    description="Your id for the person, as given when their conversations were created",
)
SEQ_SCHEMA = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
# OpenAPI 3.0 describes an event stream by the schema of one event.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["message.ack", "message.delta", "message.done", "message.snapshot", "error"],
        },
        "data": {"type": "string", "description": "The WebSocket frame of that type, as JSON"},
        "id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The last token sequence the client holds after this event",
        },
        "retry": {"type": "integer"},
    },
}
SSE_EXAMPLE = (
    "retry: 2000\n\n"
    "id: 0\nevent: message.ack\n"
    'data: {"type":"message.ack","client_id":"5f0e…","message_id":"0b6d…",'
    '"reply_id":"7a1d…","duplicate":false}\n\n'
    'id: 3\nevent: message.delta\ndata: {"type":"message.delta","message_id":"7a1d…",'
    '"seq":1,"tokens":["Two"," classic"," sets."]}\n\n'
    'id: 11\nevent: message.done\ndata: {"type":"message.done","message_id":"7a1d…",'
    '"last_seq":11,"status":"complete","error_code":"","is_fallback":false,'
    '"ttft_ms":182,"total_ms":640,"token_count":11}\n\n'
)


class ConversationStateApi(APIView):
    """A conversation's dialogue state, masked slots and latest messages."""

    permission_classes = [ChatAccess]

    @extend_schema(
        operation_id="conversation_state",
        parameters=[
            OpenApiParameter(
                "messages",
                {"type": "integer", "minimum": 0, "maximum": serializers.MESSAGES_MAX},
                description=f"How many of the latest messages (default "
                f"{serializers.MESSAGES_DEFAULT}, at most {serializers.MESSAGES_MAX})",
            )
        ],
        responses={200: serializers.StateOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Asking for the address",
                value={
                    "id": CONVERSATION_EXAMPLE["id"],
                    "state": "waiting_input",
                    "intent": "order_meal",
                    "awaiting_slot": "address",
                    "confirming": False,
                    "last_active": "2026-11-22T09:31:12Z",
                    "slots": [
                        {"name": "meal", "kind": "choice", "value": "classic"},
                        {"name": "phone", "kind": "phone", "value": "139****5678"},
                    ],
                    "messages": [
                        {k: MESSAGE_EXAMPLE[k] for k in STATE_MESSAGE_FIELDS},
                        {k: REPLY_EXAMPLE[k] for k in STATE_MESSAGE_FIELDS},
                    ],
                },
            )
        ],
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

    permission_classes = [ChatAccess]

    @extend_schema(
        operation_id="pickup_code_create",
        request=None,
        responses={201: serializers.PickupCodeOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "A code", value={"code": "K7QF-M2XD", "expires_at": "2026-11-22T09:41:12Z"}
            )
        ],
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

    # A new device may have no session yet: redeeming makes one.
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="pickup_redeem",
        request=serializers.PickupRedeemInputSerializer,
        responses={200: serializers.PickupRedeemOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample("Redeem", value={"code": "K7QF-M2XD"}, request_only=True),
            OpenApiExample(
                "Opened",
                value={
                    "conversation_id": CONVERSATION_EXAMPLE["id"],
                    "url": f"/c/{CONVERSATION_EXAMPLE['id']}/",
                },
                response_only=True,
            ),
        ],
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


# --- Conversations ------------------------------------------------------------------------------


class ConversationListCreateApi(generics.ListAPIView):
    """List your conversations (newest first) or start one."""

    permission_classes = [ChatAccess]
    pagination_class = CursorPage
    serializer_class = serializers.ConversationOutputSerializer

    def get_queryset(self) -> QuerySet[Conversation]:
        params = query_params(serializers.ConversationListQuerySerializer, self.request)
        actor = actor_from_request(self.request, create_session=False)
        conversations = selectors.conversation_list_for_actor(actor)
        if "end_user" in params:
            conversations = conversations.filter(end_user=params["end_user"])
        return conversations

    @extend_schema(
        operation_id="conversation_list",
        parameters=[
            OpenApiParameter(
                "end_user",
                {"type": "string", "maxLength": 200, "pattern": "^[^\\u0000]*$"},
                description="Only this end user's conversations",
            )
        ],
        responses={200: serializers.ConversationOutputSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("A page", value=[CONVERSATION_EXAMPLE])],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="conversation_create",
        parameters=[IDEMPOTENCY_KEY_HEADER],
        request=serializers.ConversationCreateInputSerializer,
        responses={201: serializers.ConversationOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Start a conversation",
                value={"title": "Order a meal", "end_user": "crm-10442"},
                request_only=True,
            ),
            OpenApiExample(
                "Started", value=CONVERSATION_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        return run_idempotent(request, lambda: self._create(request))

    def _create(self, request: Request) -> Response:
        payload = serializers.ConversationCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        conversation = services.conversation_create(
            actor=actor_from_request(request, create_session=True), **payload.validated_data
        )
        body = serializers.ConversationOutputSerializer(conversation).data
        return Response(body, status=status.HTTP_201_CREATED)


class ConversationDetailApi(APIView):
    permission_classes = [ChatAccess]

    @extend_schema(
        operation_id="conversation_retrieve",
        responses={200: serializers.ConversationOutputSerializer, **ERRORS},
        examples=[OpenApiExample("A conversation", value=CONVERSATION_EXAMPLE)],
    )
    def get(self, request: Request, conversation_id: uuid.UUID) -> Response:
        conversation = _conversation(request, conversation_id)
        return Response(serializers.ConversationOutputSerializer(conversation).data)


class ConversationCloseApi(APIView):
    """Close a conversation: it stays readable and takes no more messages."""

    permission_classes = [ChatAccess]

    @extend_schema(
        operation_id="conversation_close",
        request=None,
        responses={200: serializers.ConversationOutputSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Closed",
                value={**CONVERSATION_EXAMPLE, "closed_at": "2026-11-22T10:00:00Z"},
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> Response:
        conversation = services.conversation_close(
            conversation=_conversation(request, conversation_id)
        )
        return Response(serializers.ConversationOutputSerializer(conversation).data)


# --- Messages -----------------------------------------------------------------------------------


class MessagePage(CursorPage):
    ordering = "sequence"


class MessageListCreateApi(generics.ListAPIView):
    """Read a conversation's messages in order, or send one and get the reply."""

    permission_classes = [ChatAccess]
    pagination_class = MessagePage
    serializer_class = serializers.MessageDetailSerializer

    def get_renderers(self) -> list[Any]:
        # A POST may ask for its reply as an event stream; the list is JSON only.
        if self.request is not None and self.request.method == "POST":
            return [JSONRenderer(), EventStreamRenderer()]
        return [JSONRenderer()]

    def get_queryset(self) -> QuerySet[Message]:
        conversation = _conversation(self.request, self.kwargs["conversation_id"])
        return conversation.messages.select_related("reply_to")

    @extend_schema(
        operation_id="message_list",
        responses={200: serializers.MessageDetailSerializer(many=True), **ERRORS},
        examples=[OpenApiExample("A page", value=[MESSAGE_EXAMPLE, REPLY_EXAMPLE])],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="message_send",
        description=(
            "Send the user's message and get the bot's reply. By default the response is JSON "
            "once the reply is complete (201; 200 for a retry of a message already sent). With "
            "`Accept: text/event-stream` or `?stream=true` the reply streams as Server-Sent "
            "Events (`message.ack`, `message.delta`..., `message.done`), each event's id being "
            "the last token sequence it carries; to resume after a drop, send the same request "
            "again (same Idempotency-Key or client_id) with `Last-Event-ID`. A retry never "
            "starts a second reply."
        ),
        parameters=[
            IDEMPOTENCY_KEY_HEADER,
            OpenApiParameter("stream", bool, description="Stream the reply as Server-Sent Events"),
            OpenApiParameter(
                "Last-Event-ID",
                SEQ_SCHEMA,
                OpenApiParameter.HEADER,
                description="Resume a stream after this token sequence",
            ),
        ],
        request=serializers.MessagePostInputSerializer,
        responses={
            (201, "application/json"): serializers.TurnOutputSerializer,
            (200, "application/json"): serializers.TurnOutputSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description="The reply as Server-Sent Events",
                examples=[OpenApiExample("A streamed reply", value=SSE_EXAMPLE)],
            ),
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "Send a message",
                value={
                    "text": "I'd like two classic sets",
                    "client_id": MESSAGE_EXAMPLE["client_id"],
                },
                request_only=True,
            ),
            OpenApiExample(
                "The reply",
                value={"message": MESSAGE_EXAMPLE, "reply": REPLY_EXAMPLE},
                response_only=True,
                status_codes=["201", "200"],
                media_type="application/json",
            ),
        ],
    )
    def post(self, request: Request, conversation_id: uuid.UUID) -> HttpResponse:
        payload = serializers.MessagePostInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        params = query_params(serializers.MessagePostQuerySerializer, request)
        stream = wants_stream(request, params["stream"])
        after_seq = resume_point(request, None) if stream else 0
        conversation = _conversation(request, conversation_id)
        ack, status_code = _send(request, conversation, payload.validated_data)
        if stream:
            return event_stream(
                conversation,
                ack.reply_id,
                after_seq,
                first=[event("message.ack", ack.frame(), after_seq)],
            )
        return StreamingHttpResponse(
            _turn_json(conversation, ack), content_type="application/json", status=status_code
        )


def _send(
    request: Request, conversation: Conversation, data: dict[str, Any]
) -> tuple[TurnAck, int]:
    """Start the turn once per client_id / Idempotency-Key; (ack, status of the first answer)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    claim = None
    client_id = data.get("client_id")
    if key is not None and request.user.is_authenticated:
        claim = idempotency_claim(
            owner_id=request.user.pk,
            key=key,
            endpoint=f"{request.method} {request.path}",
            body_hash=fingerprint(request.data),
        )
    if client_id is None:
        # The key names the message: its retries find the turn it started, and nothing else
        # (it is namespaced by the conversation).
        client_id = (
            uuid.uuid5(conversation.public_id, f"idempotency-key:{key}") if key else uuid.uuid4()
        )
    try:
        ack = async_to_sync(turn_submit)(
            conversation=conversation,
            text=data["text"],
            client_id=client_id,
            source=MessageSource.API if isinstance(request.auth, ApiKey) else MessageSource.WEB,
        )
    except BaseException:
        if claim is not None and not claim.replay:
            idempotency_abandon(claim.record)
        raise
    status_code = status.HTTP_200_OK if ack.duplicate else status.HTTP_201_CREATED
    if claim is not None:
        if claim.replay:
            status_code = claim.record.status_code or status_code
        else:
            idempotency_finish(
                claim.record,
                status_code=status_code,
                body={"message_id": ack.message_id, "reply_id": ack.reply_id},
            )
    return ack, status_code


async def _turn_json(conversation: Conversation, ack: TurnAck) -> AsyncIterator[bytes]:
    await wait_for_end(conversation, ack.reply_id)
    body = await database_sync_to_async(_turn_body)(conversation, ack)
    yield json.dumps(body, ensure_ascii=False).encode()


def _turn_body(conversation: Conversation, ack: TurnAck) -> dict[str, Any]:
    messages = {
        str(m.public_id): m
        for m in conversation.messages.select_related("reply_to").filter(
            public_id__in=[ack.message_id, ack.reply_id]
        )
    }
    return serializers.TurnOutputSerializer(
        {"message": messages[ack.message_id], "reply": messages[ack.reply_id]}
    ).data


class MessageDetailApi(APIView):
    permission_classes = [ChatAccess]

    @extend_schema(
        operation_id="message_retrieve",
        responses={200: serializers.MessageDetailSerializer, **ERRORS},
        examples=[OpenApiExample("A reply", value=REPLY_EXAMPLE)],
    )
    def get(self, request: Request, conversation_id: uuid.UUID, message_id: uuid.UUID) -> Response:
        conversation = _conversation(request, conversation_id)
        message = (
            conversation.messages.select_related("reply_to").filter(public_id=message_id).first()
        )
        if message is None:
            raise ConversationNotFound("No such message in this conversation")
        return Response(serializers.MessageDetailSerializer(message).data)


class ReplyEventsApi(APIView):
    """Follow a reply as Server-Sent Events, from the start or after `Last-Event-ID`."""

    permission_classes = [ChatAccess]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        operation_id="reply_events",
        parameters=[
            OpenApiParameter(
                "Last-Event-ID",
                SEQ_SCHEMA,
                OpenApiParameter.HEADER,
                description="Resume after this token sequence (EventSource sends it itself)",
            ),
            OpenApiParameter("after_seq", SEQ_SCHEMA, description="Same as Last-Event-ID"),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                SSE_EVENT_SCHEMA,
                description="The reply's events, ending with message.done or message.snapshot",
                examples=[OpenApiExample("A streamed reply", value=SSE_EXAMPLE)],
            ),
            **ERRORS,
        },
    )
    def get(
        self, request: Request, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> HttpResponse:
        params = query_params(serializers.ReplyEventsQuerySerializer, request)
        after_seq = resume_point(request, params.get("after_seq"))
        conversation = _conversation(request, conversation_id)
        if not conversation.messages.filter(public_id=message_id, role="assistant").exists():
            raise ConversationNotFound("No such reply in this conversation")
        return event_stream(conversation, str(message_id), after_seq)


# --- One end user's data ---------------------------------------------------------------------


def _check_end_user(end_user: str) -> None:
    """An end-user id can be stored as given (no NUL, which PostgreSQL refuses; 200 at most)."""
    if "\x00" in end_user or len(end_user) > 200:
        raise InvalidParameter(
            "Not a valid end-user id",
            extra={"fields": {"end_user": ["At most 200 characters, no NUL."]}},
        )


class EndUserExportApi(APIView):
    """Everything stored about one end user, as a JSON file (audited)."""

    permission_classes = [HasScope]
    required_scope = Scope.CHAT

    @extend_schema(
        operation_id="end_user_export",
        parameters=[END_USER_PATH],
        responses={200: serializers.EndUserExportSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "One conversation",
                value={
                    "end_user": "crm-10442",
                    "conversations": [
                        {
                            "id": CONVERSATION_EXAMPLE["id"],
                            "title": "Order a meal",
                            "state": "waiting_input",
                            "created_at": "2026-11-22T09:30:00Z",
                            "last_active": "2026-11-22T09:31:12Z",
                            "closed_at": None,
                            "messages": [
                                {
                                    "id": MESSAGE_EXAMPLE["id"],
                                    "sequence": 1,
                                    "role": "user",
                                    "text": MESSAGE_EXAMPLE["text"],
                                    "status": "complete",
                                    "created_at": "2026-11-22T09:31:10Z",
                                }
                            ],
                            "slots": [{"name": "phone", "kind": "phone", "value": "13912345678"}],
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request: Request, end_user: str) -> Response:
        _check_end_user(end_user)
        data = enduser.end_user_export(
            owner=request.user, end_user=end_user, requested_by=key_name(request)
        )
        body = serializers.EndUserExportSerializer(data).data
        filename = f"chatsite-export-{uuid.uuid4().hex[:8]}.json"
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class EndUserEraseApi(APIView):
    """Erase one end user's conversations and everything in them (audited)."""

    permission_classes = [HasScope]
    required_scope = Scope.CHAT

    @extend_schema(
        operation_id="end_user_erase",
        parameters=[END_USER_PATH],
        responses={200: serializers.EndUserErasedSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "Erased", value={"end_user": "crm-10442", "conversations": 2, "messages": 36}
            )
        ],
    )
    def delete(self, request: Request, end_user: str) -> Response:
        _check_end_user(end_user)
        erased = enduser.end_user_erase(
            owner=request.user, end_user=end_user, requested_by=key_name(request)
        )
        body = {
            "end_user": end_user,
            "conversations": erased.conversations,
            "messages": erased.messages,
        }
        return Response(serializers.EndUserErasedSerializer(body).data)
