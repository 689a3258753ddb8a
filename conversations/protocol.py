"""The client-to-server frames of the chat WebSocket (docs/protocol.md), parsed strictly."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatsite.exceptions import ApplicationError

PROTOCOL_VERSION = 1


class ProtocolError(ApplicationError):
    code = "invalid_frame"


@dataclass(frozen=True)
class SendFrame:
    text: str
    client_id: uuid.UUID


@dataclass(frozen=True)
class ResumeFrame:
    message_id: str
    after_seq: int


@dataclass(frozen=True)
class PingFrame:
    pass


ClientFrame = SendFrame | ResumeFrame | PingFrame


def parse_frame(raw: str | None, binary: bytes | None) -> ClientFrame:
    """Turn a received WebSocket frame into a typed frame.

    Raises:
        ProtocolError: with code frame_too_large, binary_not_supported, invalid_json,
            invalid_frame or unknown_type.
    """
    if binary is not None:
        raise ProtocolError("Binary frames are not accepted here", code="binary_not_supported")
    raw = raw or ""
    if len(raw.encode()) > settings.CHAT_MAX_FRAME_BYTES:
        raise ProtocolError(
            f"Frames are limited to {settings.CHAT_MAX_FRAME_BYTES} bytes",
            code="frame_too_large",
            extra={"limit": settings.CHAT_MAX_FRAME_BYTES},
        )
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError("The frame is not valid JSON", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise ProtocolError("A frame must be a JSON object")
    kind = data.get("type")
    if kind == "message.send":
        return SendFrame(text=_text(data), client_id=_uuid(data, "client_id"))
    if kind == "resume":
        return ResumeFrame(message_id=str(_uuid(data, "message_id")), after_seq=_seq(data))
    if kind == "ping":
        return PingFrame()
    raise ProtocolError(f"Unknown frame type {str(kind)[:40]!r}", code="unknown_type")


def _text(data: dict[str, Any]) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise ProtocolError("message.send needs a text string")
    return text


def _uuid(data: dict[str, Any], name: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(data.get(name)))
    except ValueError as exc:
        raise ProtocolError(f"{name} must be a UUID") from exc


def _seq(data: dict[str, Any]) -> int:
    value = data.get("after_seq", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("after_seq must be a non-negative integer")
    return value
