"""The client-to-server frames of the voice WebSocket (docs/protocol.md, "Voice"), parsed strictly.

Binary frames are microphone audio: 16 kHz mono PCM16 little-endian, at most
VOICE_MAX_FRAME_BYTES each. Text frames are JSON control frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatsite.exceptions import ApplicationError

VOICE_PROTOCOL_VERSION = 1
LANGUAGES = ("zh", "en")
# A control frame is a few dozen bytes; anything near this is not one of ours.
MAX_CONTROL_BYTES = 4096


class VoiceProtocolError(ApplicationError):
    code = "invalid_frame"


@dataclass(frozen=True)
class AudioFrame:
    pcm: bytes


@dataclass(frozen=True)
class StartFrame:
    """The microphone is open; `language` pins the recogniser (None: it detects)."""

    language: str | None


@dataclass(frozen=True)
class EndFrame:
    """The microphone is closed: whatever speech is buffered is the end of an utterance."""


@dataclass(frozen=True)
class CancelFrame:
    """Stop the reply being spoken (a stop button), as speaking over it would."""


@dataclass(frozen=True)
class PingFrame:
    pass


VoiceFrame = AudioFrame | StartFrame | EndFrame | CancelFrame | PingFrame


def max_frame_bytes() -> int:
    return int(settings.VOICE_MAX_FRAME_BYTES)


def parse_voice_frame(raw: str | None, binary: bytes | None) -> VoiceFrame:
    """Turn a received WebSocket frame into a typed frame.

    Raises:
        VoiceProtocolError: audio_invalid (odd length, empty or over VOICE_MAX_FRAME_BYTES),
            frame_too_large, invalid_json, invalid_frame or unknown_type.
    """
    if binary is not None:
        return AudioFrame(pcm=_audio(binary))
    raw = raw or ""
    if len(raw.encode()) > MAX_CONTROL_BYTES:
        raise VoiceProtocolError(
            f"Control frames are limited to {MAX_CONTROL_BYTES} bytes",
            code="frame_too_large",
            extra={"limit": MAX_CONTROL_BYTES},
        )
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise VoiceProtocolError("The frame is not valid JSON", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise VoiceProtocolError("A frame must be a JSON object")
    kind = data.get("type")
    if kind == "start":
        return StartFrame(language=_language(data))
    if kind == "end":
        return EndFrame()
    if kind == "cancel":
        return CancelFrame()
    if kind == "ping":
        return PingFrame()
    raise VoiceProtocolError(f"Unknown frame type {str(kind)[:40]!r}", code="unknown_type")


def _audio(binary: bytes) -> bytes:
    limit = max_frame_bytes()
    if len(binary) > limit:
        raise VoiceProtocolError(
            f"Audio frames are limited to {limit} bytes",
            code="audio_invalid",
            extra={"limit": limit, "size": len(binary)},
        )
    if not binary or len(binary) % 2:
        # PCM16: two bytes a sample; an odd length means the sender is not speaking our format.
        raise VoiceProtocolError(
            "Audio frames are 16-bit PCM: a non-empty, even number of bytes",
            code="audio_invalid",
            extra={"size": len(binary)},
        )
    return binary


def _language(data: dict[str, Any]) -> str | None:
    value = data.get("language")
    if value is None or value == "":
        return None
    if value not in LANGUAGES:
        raise VoiceProtocolError(f"language must be one of {', '.join(LANGUAGES)} or null")
    return str(value)
