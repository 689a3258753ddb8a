"""Channel-layer groups and broadcasts for low-rate events (never per token; see streams.py)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def conversation_group(conversation_id: str) -> str:
    """The group of every socket on a conversation (ASCII, hyphens, under 100 chars)."""
    return f"conversation-{conversation_id}"


def broadcast(conversation_id: str, payload: dict[str, Any]) -> None:
    """Send a `conversation.event` to every socket on the conversation, from sync code."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        conversation_group(conversation_id), {"type": "conversation.event", "payload": payload}
    )
