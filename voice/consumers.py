"""The voice WebSocket: ownership, frame parsing and errors; the pipeline is voice/session.py."""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chatsite.exceptions import ApplicationError
from conversations import selectors
from conversations.consumers import CLOSE_FORBIDDEN, actor_from_scope
from conversations.streams import encode
from voice.protocol import parse_voice_frame
from voice.session import VoiceSession

logger = logging.getLogger(__name__)


class VoiceConsumer(AsyncWebsocketConsumer):
    """`/ws/voice/<uuid>/`: microphone audio in, transcripts, reply tokens and speech out."""

    session: VoiceSession | None = None

    async def connect(self) -> None:
        actor = actor_from_scope(self.scope)
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation = await database_sync_to_async(selectors.conversation_get_for_actor)(
            conversation_id, actor
        )
        if conversation is None:
            # The chat socket's rule: unknown and not-yours look the same.
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.key = str(conversation.public_id)
        self.session = VoiceSession(
            conversation, send_json=self._send_json, send_bytes=self._send_bytes
        )
        await self.accept()
        await self.session.open()

    async def disconnect(self, code: int) -> None:
        if self.session is not None:
            await self.session.close()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        try:
            await self.session.handle(parse_voice_frame(text_data, bytes_data))
        except ApplicationError as exc:
            frame: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
            if exc.extra:
                frame["detail"] = exc.extra
            await self._send_json(frame)
        except Exception:
            logger.exception("voice socket frame failed", extra={"conversation_id": self.key})
            await self._send_json(
                {"type": "error", "code": "internal_error", "message": "Something went wrong"}
            )

    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=encode(frame))

    async def _send_bytes(self, data: bytes) -> None:
        await self.send(bytes_data=data)
