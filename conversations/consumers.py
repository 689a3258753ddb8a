"""The chat WebSocket: protocol only; turns, streams and reads live in their own modules."""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chatsite.exceptions import ApplicationError
from conversations import selectors
from conversations.events import conversation_group
from conversations.follow import fetch_missing
from conversations.models import Conversation
from conversations.protocol import (
    PROTOCOL_VERSION,
    PingFrame,
    ResumeFrame,
    SendFrame,
    parse_frame,
)
from conversations.streams import Frame, Outbox, StreamHub, get_hub
from conversations.turns import turn_submit

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403


def actor_from_scope(scope: dict[str, Any]) -> selectors.Actor:
    """The owner identity of a socket: its user, else its browser session."""
    user = scope.get("user")
    session = scope.get("session")
    session_key = getattr(session, "session_key", None) or ""
    if user is not None and user.is_authenticated:
        return selectors.Actor(user_id=user.pk, session_key=session_key)
    return selectors.Actor(user_id=None, session_key=session_key)


class ConversationConsumer(AsyncWebsocketConsumer):
    """`/ws/conversations/<uuid>/`: send messages, receive streamed replies, resume."""

    conversation: Conversation
    hub: StreamHub
    outbox: Outbox | None = None

    async def connect(self) -> None:
        actor = actor_from_scope(self.scope)
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation = await database_sync_to_async(selectors.conversation_get_for_actor)(
            conversation_id, actor
        )
        if conversation is None:
            # Unknown and not-yours look the same: nothing leaks about other conversations.
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.conversation = conversation
        self.key = str(conversation.public_id)
        self.hub = await get_hub()
        self.outbox = Outbox(self._send_text, self._fetch)
        await self.hub.subscribe(self.key, self.outbox)
        await self.channel_layer.group_add(conversation_group(self.key), self.channel_name)
        await self.accept()
        self.outbox.start()
        self.outbox.deliver(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "conversation_id": self.key,
                "state": conversation.state,
            }
        )

    async def disconnect(self, code: int) -> None:
        if self.outbox is None:
            return
        await self.hub.unsubscribe(self.key, self.outbox)
        await self.channel_layer.group_discard(conversation_group(self.key), self.channel_name)
        await self.outbox.stop()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        client_id: str | None = None
        try:
            frame = parse_frame(text_data, bytes_data)
            if isinstance(frame, SendFrame):
                client_id = str(frame.client_id)
                await self._on_send(frame)
            elif isinstance(frame, ResumeFrame):
                self._outbox.resume(frame.message_id, frame.after_seq)
            elif isinstance(frame, PingFrame):
                self._outbox.deliver({"type": "pong"})
        except ApplicationError as exc:
            self._outbox.deliver(_error_frame(exc, client_id))
        except Exception:
            logger.exception("chat socket frame failed", extra={"conversation_id": self.key})
            self._outbox.deliver(
                {"type": "error", "code": "internal_error", "message": "Something went wrong"}
            )

    async def _on_send(self, frame: SendFrame) -> None:
        ack = await turn_submit(
            conversation=self.conversation, text=frame.text, client_id=frame.client_id
        )
        self._outbox.deliver(ack.frame())
        if ack.duplicate:
            # The retry attaches to the turn already running (or finished): send what it lacks.
            self._outbox.resume(ack.reply_id, None)

    async def conversation_event(self, event: dict[str, Any]) -> None:
        """A low-rate event broadcast through the channel layer (events.broadcast)."""
        self._outbox.deliver({"type": "conversation.event", **event["payload"]})

    @property
    def _outbox(self) -> Outbox:
        assert self.outbox is not None
        return self.outbox

    async def _send_text(self, data: str) -> None:
        await self.send(text_data=data)

    async def _fetch(self, message_id: str, after_seq: int) -> list[Frame]:
        return await fetch_missing(self.hub, self.conversation, message_id, after_seq)


def _error_frame(exc: ApplicationError, client_id: str | None) -> Frame:
    frame: Frame = {"type": "error", "code": exc.code, "message": exc.message}
    if client_id is not None:
        frame["client_id"] = client_id
    if exc.extra:
        frame["detail"] = exc.extra
    return frame
