"""Helpers for driving the chat socket through the real ASGI application."""

from __future__ import annotations

import json
from typing import Any

from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from conversations.models import Conversation

ORIGIN = (b"origin", b"http://localhost")


def communicator_for(
    conversation: Conversation | str,
    *,
    session_key: str | None = None,
    user: Any = None,
    origin: bytes = b"http://localhost",
) -> WebsocketCommunicator:
    """A communicator on the conversation's socket, as a browser with that session would open it."""
    public_id = conversation if isinstance(conversation, str) else str(conversation.public_id)
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if session_key:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{public_id}/", headers=headers
    )
    if user is not None:
        communicator.scope["user"] = user
    return communicator


async def receive_until(
    communicator: WebsocketCommunicator, kind: str, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Every frame up to and including the first of type `kind`."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        frames.append(frame)
        if frame["type"] == kind:
            return frames


def tokens_of(frames: list[dict[str, Any]], message_id: str) -> list[tuple[int, str]]:
    """(seq, token) pairs of one reply, in the order received."""
    pairs: list[tuple[int, str]] = []
    for frame in frames:
        if frame["type"] == "message.delta" and frame["message_id"] == message_id:
            pairs.extend((frame["seq"] + i, tok) for i, tok in enumerate(frame["tokens"]))
    return pairs
