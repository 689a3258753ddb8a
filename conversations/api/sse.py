"""Server-Sent Events for a streaming reply: the WebSocket's frames, one event each.

Each event is named after its frame type and carries the frame as JSON. Its `id` is the
sequence number of the last token the client holds once it has the event, so a reconnect that
sends `Last-Event-ID` (EventSource does this by itself) resumes exactly after it: no token lost,
none twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from chatsite.api import InvalidParameter
from conversations import selectors
from conversations.follow import follow_reply, is_final
from conversations.models import Conversation, MessageStatus
from conversations.streams import Frame

MEDIA_TYPE = "text/event-stream"
# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through content negotiation; renders errors as events."""

    media_type = MEDIA_TYPE
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):  # type: ignore[no-untyped-def]
        return event("error", {"type": "error", **(data or {})}).encode()


def event(name: str, frame: Frame | dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    data = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {name}\ndata: {data}\n\n"


def frame_seq(frame: Frame) -> int | None:
    """The last token sequence a client holds after this frame (None: it says nothing)."""
    kind = frame["type"]
    if kind == "message.delta":
        return int(frame["seq"]) + len(frame["tokens"]) - 1
    if kind in ("message.done", "message.snapshot"):
        return int(frame["last_seq"])
    return None


def wants_stream(request: Request, stream_param: bool) -> bool:
    return stream_param or request.accepted_renderer.media_type == MEDIA_TYPE


def resume_point(request: Request, after_seq: int | None) -> int:
    """Where a resumed stream starts: `Last-Event-ID`, else `after_seq`, else the beginning."""
    header = request.headers.get("Last-Event-ID")
    if header is None or not header.strip():
        return after_seq or 0
    try:
        value = int(header.strip())
    except ValueError:
        value = -1
    if not 0 <= value < 2**31:
        raise InvalidParameter(
            "Last-Event-ID must be a sequence number from this stream",
            extra={"fields": {"Last-Event-ID": ["A non-negative integer."]}},
        )
    return value


def event_stream(
    conversation: Conversation,
    reply_id: str,
    after_seq: int,
    *,
    first: list[str] | None = None,
    status: int = 200,
) -> StreamingHttpResponse:
    """The reply's events after after_seq, ending with its done (or snapshot) event."""
    response = StreamingHttpResponse(
        _events(conversation, reply_id, after_seq, first or []),
        content_type=f"{MEDIA_TYPE}; charset=utf-8",
        status=status,
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response


async def _events(
    conversation: Conversation, reply_id: str, after_seq: int, first: list[str]
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    for text in first:
        yield text
    async for frame in reply_frames(conversation, reply_id, after_seq):
        if frame is None:
            yield ": keep-alive\n\n"
        else:
            yield event(frame["type"], frame, frame_seq(frame))


async def reply_frames(
    conversation: Conversation, reply_id: str, after_seq: int
) -> AsyncIterator[Frame | None]:
    """follow_reply, plus the database's word on a reply that has gone quiet.

    A reply whose writer died never sends its done frame; while the stream is idle the stored
    row is checked, and once it is no longer streaming (finished, or recovered as stale) its
    snapshot ends the stream.
    """
    async for frame in follow_reply(
        conversation, reply_id, after_seq, idle_seconds=KEEPALIVE_SECONDS
    ):
        if frame is not None:
            yield frame
            continue
        snapshot = await database_sync_to_async(selectors.reply_snapshot)(conversation, reply_id)
        if snapshot is not None and snapshot["status"] != MessageStatus.STREAMING:
            yield snapshot
            return
        yield None


async def wait_for_end(conversation: Conversation, reply_id: str) -> None:
    """Return once the reply is over (stored)."""
    async for frame in reply_frames(conversation, reply_id, 0):
        if frame is not None and is_final(frame):
            return
