"""Following one reply as it streams: what the WebSocket's resume and the API's SSE share.

`fetch_missing` answers "what does a client holding this reply up to `after_seq` lack?" from
the stream log, else the database. `follow_reply` yields a reply's frames in order, from
`after_seq` on, until its end, through the same Outbox that orders a socket's frames.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import partial

from channels.db import database_sync_to_async

from conversations import selectors
from conversations.models import Conversation, MessageStatus
from conversations.streams import Frame, Outbox, StreamHub, get_hub

# Frame types after which nothing more comes for the reply.
_FINAL = ("message.done", "error")


async def fetch_missing(
    hub: StreamHub, conversation: Conversation, message_id: str, after_seq: int
) -> list[Frame]:
    """What a client with the reply up to after_seq is missing: the log, else the database."""
    frames = await hub.replay(message_id, after_seq)
    if frames is not None and (hub.generating_here(message_id) or _has_end(frames)):
        return frames
    # No log, or a log with no end that no process here is finishing: the database decides.
    snapshot = await database_sync_to_async(selectors.reply_snapshot)(conversation, message_id)
    if snapshot is None:
        return frames if frames is not None else [_not_found(message_id)]
    if frames is None:
        return [snapshot]
    if snapshot["status"] == MessageStatus.STREAMING:
        return frames  # still being written by another process
    if snapshot["text"]:
        return [*frames, snapshot]
    # The writer died before storing anything: end the reply with what the log holds.
    return [*frames, _end_of_dead_reply(message_id, frames, after_seq)]


def is_final(frame: Frame) -> bool:
    """Whether the reply is over once this frame is out."""
    if frame["type"] == "message.snapshot":
        return frame["status"] != MessageStatus.STREAMING
    return frame["type"] in _FINAL


class _OneReply:
    """A hub sink that passes on only one reply's frames."""

    def __init__(self, outbox: Outbox, message_id: str) -> None:
        self.outbox = outbox
        self.message_id = message_id

    def deliver(self, frame: Frame, data: str) -> None:
        if frame.get("message_id") == self.message_id:
            self.outbox.deliver(frame, data)


async def follow_reply(
    conversation: Conversation, message_id: str, after_seq: int, *, idle_seconds: float
) -> AsyncIterator[Frame | None]:
    """The reply's frames after after_seq, in order, until its end.

    Yields None after `idle_seconds` without a frame (the caller sends a keep-alive), so a
    reply whose writer died is noticed: the caller decides when to give up.
    """
    hub = await get_hub()
    queue: asyncio.Queue[str] = asyncio.Queue()
    outbox = Outbox(queue.put, partial(fetch_missing, hub, conversation))
    sink = _OneReply(outbox, message_id)
    key = str(conversation.public_id)
    # Subscribed before the log is read: a frame published in between arrives live and the
    # outbox drops what the log already gave.
    await hub.subscribe(key, sink)
    outbox.start()
    outbox.resume(message_id, after_seq)
    try:
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), timeout=idle_seconds)
            except TimeoutError:
                yield None
                continue
            frame: Frame = json.loads(data)
            yield frame
            if is_final(frame):
                return
    finally:
        await hub.unsubscribe(key, sink)
        await outbox.stop()


def _has_end(frames: list[Frame]) -> bool:
    return bool(frames) and frames[-1]["type"] == "message.done"


def _not_found(message_id: str) -> Frame:
    return {
        "type": "error",
        "code": "not_found",
        "message": "No such reply in this conversation",
        "message_id": message_id,
    }


def _end_of_dead_reply(message_id: str, frames: list[Frame], after_seq: int) -> Frame:
    last_seq = max(
        (f["seq"] + len(f["tokens"]) - 1 for f in frames if f["type"] == "message.delta"),
        default=after_seq,
    )
    return {
        "type": "message.done",
        "message_id": message_id,
        "last_seq": last_seq,
        "status": MessageStatus.INTERRUPTED,
        "error_code": "turn_stale",
        "is_fallback": False,
        "ttft_ms": None,
        "total_ms": None,
        "token_count": last_seq,
    }
