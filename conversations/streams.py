"""Reply streams: fan-out to sockets, a resumable log, and relay between server processes.

Why not the channel layer: one `group_send` per token through channels-redis delivered under
1,000 tokens/s per process and silently dropped past its capacity. Here instead:

* The process that runs a turn delivers frames straight to its own sockets (no I/O at all).
* Tokens that arrive within CHAT_COALESCE_MS travel in one frame (the first never waits).
* With Redis, every frame is appended to a per-reply log (a Redis list, kept CHAT_STREAM_LOG_TTL)
  and published on the conversation's pub/sub channel, in one pipeline per batch for the whole
  process. Other processes hold one pub/sub connection each and forward to their sockets.
* Each socket's outbox enforces "contiguous sequence numbers per reply": a duplicate is dropped,
  a gap is filled from the log before the frame goes out. Resume uses the same path.

Without Redis (the embedded default: one server process) the log lives in process memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

Frame = dict[str, Any]

_KEY_PREFIX = "chatsite:stream"


def encode(frame: Frame) -> str:
    """Serialise a frame once; every socket that gets it sends the same text."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def log_key(message_id: str) -> str:
    return f"{_KEY_PREFIX}:log:{message_id}"


def relay_channel(conversation_id: str) -> str:
    return f"{_KEY_PREFIX}:conv:{conversation_id}"


def logs_forget(message_ids: list[str]) -> None:
    """Delete replies' stream logs now, not at their expiry (erasure: the text must go).

    Only the Redis logs are reached; the in-memory ones of the embedded default live in the
    server process and expire within CHAT_STREAM_LOG_TTL.
    """
    if not settings.REDIS_URL or not message_ids:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
    try:
        client.delete(*[log_key(message_id) for message_id in message_ids])
    finally:
        client.close()


class Sink(Protocol):
    """Something that takes frames for a conversation (a socket's outbox)."""

    def deliver(self, frame: Frame, data: str) -> None: ...


# --- Backends ---------------------------------------------------------------------------------


class MemoryBackend:
    """Log in process memory; nothing crosses processes (one server process only)."""

    def __init__(self) -> None:
        self._logs: dict[str, tuple[float, list[Frame]]] = {}

    async def start(self, hub: StreamHub) -> None:
        """Nothing to connect."""

    def write(self, conversation_id: str, frame: Frame, data: str, log_id: str | None) -> None:
        """Append to the reply's log (cross-process publishing is a no-op here)."""
        if log_id is None:
            return
        now = time.monotonic()
        expires, frames = self._logs.get(log_id, (0.0, []))
        frames.append(frame)
        self._logs[log_id] = (now + settings.CHAT_STREAM_LOG_TTL, frames)
        if len(self._logs) > 1000:  # sweep expired logs now and then
            for key in [k for k, (exp, _) in self._logs.items() if exp < now]:
                del self._logs[key]

    async def read(self, message_id: str) -> list[Frame] | None:
        """Every frame logged for the reply, or None when there is no log."""
        entry = self._logs.get(message_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return list(entry[1])

    async def listen(self, conversation_id: str) -> None:
        """Nothing to listen to."""

    async def unlisten(self, conversation_id: str) -> None:
        """Nothing to stop."""

    async def close(self) -> None:
        """Nothing to close."""


class RedisBackend:
    """Log in Redis lists and relay through Redis pub/sub, batched per process."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30
        )
        self._pending: list[tuple[str, str, str | None]] = []
        self._wake = asyncio.Event()
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=False)
        self._confirmations: dict[str, asyncio.Event] = {}
        self._channels: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._hub: StreamHub | None = None

    async def start(self, hub: StreamHub) -> None:
        """Subscribe to this process's own channel and start the writer and listener."""
        self._hub = hub
        await self._pubsub.subscribe(f"{_KEY_PREFIX}:proc:{hub.origin}")
        self._tasks = [
            asyncio.create_task(self._writer(), name="stream-writer"),
            asyncio.create_task(self._listener(), name="stream-listener"),
        ]

    def write(self, conversation_id: str, frame: Frame, data: str, log_id: str | None) -> None:
        """Queue the frame for the next pipeline (log append and publish)."""
        self._pending.append((conversation_id, data, log_id))
        self._wake.set()

    async def _writer(self) -> None:
        # While one pipeline is in flight, frames pile up and go out together: the batch size
        # adapts to the load with no timer.
        assert self._hub is not None
        origin = self._hub.origin
        ttl = settings.CHAT_STREAM_LOG_TTL
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            pipe = self._redis.pipeline(transaction=False)
            logged: set[str] = set()
            for conversation_id, data, log_id in batch:
                if log_id is not None:
                    pipe.rpush(log_key(log_id), data)
                    logged.add(log_id)
                pipe.publish(relay_channel(conversation_id), f"{origin}|{data}")
            for log_id in logged:
                pipe.expire(log_key(log_id), ttl)
            try:
                await pipe.execute()
            except Exception:
                logger.exception("stream relay write failed", extra={"frames": len(batch)})

    async def _listener(self) -> None:
        assert self._hub is not None
        hub = self._hub
        origin_prefix = f"{hub.origin}|"
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("stream relay read failed")
                await asyncio.sleep(1.0)
                continue
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"].decode()
            if kind == "subscribe":
                event = self._confirmations.pop(channel, None)
                if event is not None:
                    event.set()
                continue
            if kind != "message":
                continue
            payload: str = message["data"].decode()
            if payload.startswith(origin_prefix):
                continue  # our own frame: local sockets already have it
            _, _, data = payload.partition("|")
            conversation_id = channel.rsplit(":", 1)[-1]
            hub.deliver_local(conversation_id, json.loads(data), data)

    async def read(self, message_id: str) -> list[Frame] | None:
        """Every frame logged for the reply, or None when there is no log."""
        raw = await self._redis.lrange(log_key(message_id), 0, -1)
        if not raw:
            return None
        return [json.loads(item) for item in raw]

    async def listen(self, conversation_id: str) -> None:
        """Subscribe to the conversation's channel and wait until Redis confirms it."""
        channel = relay_channel(conversation_id)
        if channel in self._channels:
            return
        self._channels.add(channel)
        event = asyncio.Event()
        self._confirmations[channel] = event
        await self._pubsub.subscribe(channel)
        try:
            await asyncio.wait_for(event.wait(), timeout=3.0)
        except TimeoutError:
            logger.warning("stream relay subscription not confirmed", extra={"channel": channel})

    async def unlisten(self, conversation_id: str) -> None:
        """Stop relaying the conversation to this process."""
        channel = relay_channel(conversation_id)
        if channel in self._channels:
            self._channels.discard(channel)
            await self._pubsub.unsubscribe(channel)

    async def close(self) -> None:
        """Stop the tasks and close the connections."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pubsub.aclose()
        await self._redis.aclose()


Backend = MemoryBackend | RedisBackend


# --- The hub ----------------------------------------------------------------------------------


class ReplyStream:
    """The tokens of one reply being generated in this process."""

    def __init__(self, hub: StreamHub, conversation_id: str, message_id: str) -> None:
        self.hub = hub
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.tokens: list[str] = []
        self.published = 0  # tokens already sent out
        self.done_frame: Frame | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._coalesce = settings.CHAT_COALESCE_MS / 1000

    def push(self, token: str) -> None:
        """Add a token; it goes out now if it is the first, else with the next flush."""
        self.tokens.append(token)
        if self.published == 0:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self._coalesce, self.flush)

    def flush(self) -> None:
        """Publish every token not yet sent, as one frame."""
        self._handle = None
        if self.published == len(self.tokens):
            return
        frame = {
            "type": "message.delta",
            "message_id": self.message_id,
            "seq": self.published + 1,
            "tokens": self.tokens[self.published :],
        }
        self.published = len(self.tokens)
        self.hub.publish(self.conversation_id, frame, log_id=self.message_id)

    def finish(self, done: Frame) -> None:
        """Flush the rest and publish the done frame."""
        if self._handle is not None:
            self._handle.cancel()
        self.flush()
        self.done_frame = done
        self.hub.publish(self.conversation_id, done, log_id=self.message_id)
        self.hub.forget_later(self.message_id)

    def frames_after(self, after_seq: int) -> list[Frame]:
        """What a socket that has tokens up to after_seq is missing (published tokens only)."""
        frames: list[Frame] = []
        if after_seq < self.published:
            frames.append(
                {
                    "type": "message.delta",
                    "message_id": self.message_id,
                    "seq": after_seq + 1,
                    "tokens": self.tokens[after_seq : self.published],
                }
            )
        if self.done_frame is not None:
            frames.append(self.done_frame)
        return frames


class StreamHub:
    """This process's fan-out point for conversation frames."""

    # Finished replies stay in memory this long, so a resume in this process never has to wait
    # for the batched Redis writer to catch up.
    KEEP_FINISHED_SECONDS = 60.0

    def __init__(self, backend: Backend) -> None:
        self.origin = uuid.uuid4().hex
        self.backend = backend
        self._sinks: dict[str, set[Sink]] = defaultdict(set)
        self._live: dict[str, ReplyStream] = {}
        self._lock = asyncio.Lock()

    def open_reply(self, conversation_id: str, message_id: str) -> ReplyStream:
        """Start a reply generated in this process."""
        stream = ReplyStream(self, conversation_id, message_id)
        self._live[message_id] = stream
        return stream

    def forget_later(self, message_id: str) -> None:
        asyncio.get_running_loop().call_later(
            self.KEEP_FINISHED_SECONDS, self._live.pop, message_id, None
        )

    def publish(self, conversation_id: str, frame: Frame, *, log_id: str | None = None) -> None:
        """Send a frame to every socket on the conversation, here and in other processes."""
        data = encode(frame)
        self.deliver_local(conversation_id, frame, data)
        self.backend.write(conversation_id, frame, data, log_id)

    def deliver_local(self, conversation_id: str, frame: Frame, data: str) -> None:
        for sink in tuple(self._sinks.get(conversation_id, ())):
            sink.deliver(frame, data)

    async def subscribe(self, conversation_id: str, sink: Sink) -> None:
        """Start delivering the conversation's frames to the sink (returns once live)."""
        async with self._lock:
            first = not self._sinks[conversation_id]
            self._sinks[conversation_id].add(sink)
            if first:
                await self.backend.listen(conversation_id)

    async def unsubscribe(self, conversation_id: str, sink: Sink) -> None:
        """Stop delivering to the sink."""
        async with self._lock:
            sinks = self._sinks.get(conversation_id)
            if sinks is None:
                return
            sinks.discard(sink)
            if not sinks:
                del self._sinks[conversation_id]
                await self.backend.unlisten(conversation_id)

    def generating_here(self, message_id: str) -> bool:
        """Whether this process is (or just was) writing the reply."""
        return message_id in self._live

    async def replay(self, message_id: str, after_seq: int) -> list[Frame] | None:
        """Frames of the reply after after_seq (and its done frame); None if no log is kept."""
        live = self._live.get(message_id)
        if live is not None:
            return live.frames_after(after_seq)
        frames = await self.backend.read(message_id)
        if frames is None:
            return None
        return [trimmed for f in frames if (trimmed := trim_delta(f, after_seq)) is not None]


def trim_delta(frame: Frame, after_seq: int) -> Frame | None:
    """Drop the tokens a socket already has; None when nothing new is left."""
    if frame["type"] != "message.delta":
        return frame
    seq, tokens = frame["seq"], frame["tokens"]
    if seq + len(tokens) - 1 <= after_seq:
        return None
    if seq > after_seq:
        return frame
    skip = after_seq - seq + 1
    return {**frame, "seq": after_seq + 1, "tokens": tokens[skip:]}


# One hub per event loop: tests run each on a fresh loop, servers have exactly one.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamHub] = weakref.WeakKeyDictionary()
_hub_starting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[StreamHub]] = (
    weakref.WeakKeyDictionary()
)


async def get_hub() -> StreamHub:
    """This loop's hub, started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is not None:
        return hub
    starting = _hub_starting.get(loop)
    if starting is not None:
        return await asyncio.shield(starting)
    future: asyncio.Future[StreamHub] = loop.create_future()
    _hub_starting[loop] = future
    try:
        backend: Backend = (
            RedisBackend(settings.REDIS_URL) if settings.REDIS_URL else MemoryBackend()
        )
        hub = StreamHub(backend)
        await backend.start(hub)
    except BaseException as exc:
        future.set_exception(exc)
        del _hub_starting[loop]
        raise
    _hubs[loop] = hub
    future.set_result(hub)
    del _hub_starting[loop]
    return hub


async def close_hub() -> None:
    """Close this loop's hub (tests; server shutdown)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.pop(loop, None)
    if hub is not None:
        await hub.backend.close()


# --- One socket's outgoing frames ---------------------------------------------------------------

Fetch = Callable[[str, int], Awaitable[list[Frame]]]


class Outbox:
    """Orders a socket's outgoing frames and keeps each reply's tokens contiguous.

    Frames are queued and sent by one task, so a replay (which awaits the log) can never be
    overtaken by live frames. For every reply it tracks the last sequence sent: duplicates are
    dropped, and a gap is filled from `fetch` (the hub's log, or the database) first.
    """

    def __init__(self, send: Callable[[str], Awaitable[None]], fetch: Fetch) -> None:
        self._send = send
        self._fetch = fetch
        self._queue: asyncio.Queue[
            tuple[Frame, str | None] | tuple[None, tuple[str, int | None]]
        ] = asyncio.Queue()
        self._sent: dict[str, int] = {}
        self._finished: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="socket-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def deliver(self, frame: Frame, data: str | None = None) -> None:
        """Queue a frame (data is its encoded text, when already known)."""
        self._queue.put_nowait((frame, data))

    def resume(self, message_id: str, after_seq: int | None) -> None:
        """The client has the reply up to after_seq (None: as sent here); queue the rest."""
        self._queue.put_nowait((None, (message_id, after_seq)))

    async def _run(self) -> None:
        while True:
            frame, extra = await self._queue.get()
            try:
                if frame is None:
                    message_id, after_seq = extra  # type: ignore[misc]
                    if after_seq is None:
                        after_seq = self._sent.get(message_id, 0)
                    self._sent[message_id] = after_seq
                    self._finished.discard(message_id)
                    for missing in await self._fetch(message_id, after_seq):
                        await self._emit(missing, None)
                else:
                    await self._emit(frame, extra)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("socket outbox failed to send a frame")

    async def _emit(self, frame: Frame, data: str | None) -> None:
        kind = frame["type"]
        if kind == "message.delta":
            await self._emit_delta(frame, data)
        elif kind in ("message.done", "message.snapshot"):
            message_id = frame["message_id"]
            if message_id in self._finished:
                return
            last = self._sent.get(message_id, 0)
            if kind == "message.done" and frame.get("last_seq", 0) > last:
                await self._backfill(message_id, last, frame["last_seq"])
            self._sent[message_id] = max(self._sent.get(message_id, 0), frame.get("last_seq", 0))
            # A snapshot of a reply another process is still writing does not end it: its
            # later deltas must still go out.
            if kind == "message.done" or frame.get("status") != "streaming":
                self._finished.add(message_id)
            await self._send(data if data is not None else encode(frame))
        else:
            await self._send(data if data is not None else encode(frame))

    async def _emit_delta(self, frame: Frame, data: str | None) -> None:
        message_id = frame["message_id"]
        if message_id in self._finished:
            return
        last = self._sent.get(message_id, 0)
        if frame["seq"] > last + 1:
            await self._backfill(message_id, last, frame["seq"] - 1)
            last = self._sent.get(message_id, 0)
        trimmed = trim_delta(frame, last)
        if trimmed is None:
            return
        if trimmed["seq"] != last + 1:
            logger.warning(
                "reply stream gap not filled",
                extra={"message_id": message_id, "have": last, "next": trimmed["seq"]},
            )
        self._sent[message_id] = trimmed["seq"] + len(trimmed["tokens"]) - 1
        await self._send(data if trimmed is frame and data is not None else encode(trimmed))

    async def _backfill(self, message_id: str, have: int, want: int) -> None:
        for missing in await self._fetch(message_id, have):
            if missing["type"] != "message.delta":
                continue
            last = self._sent.get(message_id, 0)
            trimmed = trim_delta(missing, last)
            if trimmed is None or trimmed["seq"] > last + 1:
                continue
            tokens = trimmed["tokens"][: max(0, want - last)]
            if not tokens:
                break
            trimmed = {**trimmed, "tokens": tokens}
            self._sent[message_id] = last + len(tokens)
            await self._send(encode(trimmed))
