"""The reply-stream hub: per-socket ordering, gap filling, and the relay between processes."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.conf import settings

from conversations.streams import (
    MemoryBackend,
    Outbox,
    RedisBackend,
    StreamHub,
    encode,
    trim_delta,
)

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis)")


def delta(seq: int, *tokens: str, message_id: str = "m1") -> dict:
    return {"type": "message.delta", "message_id": message_id, "seq": seq, "tokens": list(tokens)}


@pytest.mark.parametrize(
    ("frame", "after", "expected"),
    [
        (delta(1, "a", "b"), 0, delta(1, "a", "b")),
        (delta(1, "a", "b"), 1, delta(2, "b")),
        (delta(1, "a", "b"), 2, None),
        (delta(3, "c"), 1, delta(3, "c")),
        (
            {"type": "message.done", "message_id": "m1"},
            5,
            {"type": "message.done", "message_id": "m1"},
        ),
    ],
)
def test_trim_delta_drops_what_the_socket_has(frame, after, expected):
    assert trim_delta(frame, after) == expected


class Recorder:
    def __init__(self) -> None:
        self.frames: list[dict] = []

    async def send(self, data: str) -> None:
        self.frames.append(json.loads(data))

    def tokens(self) -> list[tuple[int, str]]:
        return [
            (f["seq"] + i, t)
            for f in self.frames
            if f["type"] == "message.delta"
            for i, t in enumerate(f["tokens"])
        ]


async def _drain(outbox: Outbox) -> None:
    for _ in range(50):
        await asyncio.sleep(0.005)
        if outbox._queue.empty():
            await asyncio.sleep(0.01)
            return


async def test_outbox_drops_duplicates_and_fills_gaps_from_the_log():
    # given a log holding tokens 1..5 and a socket that saw none of them
    log = [delta(1, "a", "b"), delta(3, "c", "d", "e")]

    async def fetch(message_id: str, after: int) -> list[dict]:
        return [f for f in (trim_delta(x, after) for x in log) if f is not None]

    recorder = Recorder()
    outbox = Outbox(recorder.send, fetch)
    outbox.start()

    # when live frames arrive mid-stream, repeated, and out of step
    outbox.deliver(delta(4, "d", "e"))
    outbox.deliver(delta(3, "c", "d", "e"))
    outbox.deliver(delta(6, "f"))
    outbox.deliver({"type": "message.done", "message_id": "m1", "last_seq": 6})
    outbox.deliver(delta(6, "f"))
    await _drain(outbox)
    await outbox.stop()

    # then the socket got 1..6 exactly once, in order, then done, and nothing after it
    assert recorder.tokens() == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]
    assert recorder.frames[-1]["type"] == "message.done"


async def test_outbox_backfills_before_done_when_tokens_are_missing():
    log = [delta(1, "a", "b", "c")]

    async def fetch(message_id: str, after: int) -> list[dict]:
        return [f for f in (trim_delta(x, after) for x in log) if f is not None]

    recorder = Recorder()
    outbox = Outbox(recorder.send, fetch)
    outbox.start()
    outbox.deliver({"type": "message.done", "message_id": "m1", "last_seq": 3})
    await _drain(outbox)
    await outbox.stop()
    assert recorder.tokens() == [(1, "a"), (2, "b"), (3, "c")]
    assert recorder.frames[-1]["type"] == "message.done"


async def test_reply_stream_coalesces_tokens_but_sends_the_first_at_once(settings):
    # given
    settings.CHAT_COALESCE_MS = 30
    hub = StreamHub(MemoryBackend())
    recorder = Recorder()
    outbox = Outbox(recorder.send, lambda m, a: asyncio.sleep(0, result=[]))
    outbox.start()
    await hub.subscribe("c1", outbox)
    stream = hub.open_reply("c1", "m1")

    # when ten tokens arrive at once
    for i in range(10):
        stream.push(f"t{i}")
    await asyncio.sleep(0.005)
    frames_before_flush = len(recorder.frames)
    await asyncio.sleep(0.06)

    # then the first went alone and the other nine together
    assert frames_before_flush == 1
    assert [len(f["tokens"]) for f in recorder.frames] == [1, 9]
    assert [s for s, _ in recorder.tokens()] == list(range(1, 11))
    await outbox.stop()


async def test_replay_of_a_live_reply_returns_only_what_is_missing():
    hub = StreamHub(MemoryBackend())
    stream = hub.open_reply("c1", "m1")
    for token in "abcde":
        stream.push(token)
    stream.flush()
    frames = await hub.replay("m1", after_seq=3)
    assert frames == [delta(4, "d", "e")]
    assert await hub.replay("unknown", after_seq=0) is None


def test_encode_keeps_chinese_readable():
    assert encode({"t": "你好"}) == '{"t":"你好"}'


@needs_redis
async def test_frames_cross_to_another_process_through_redis():
    # given two hubs, as two server processes would have, on the real Redis
    hub_a = StreamHub(RedisBackend(settings.REDIS_URL))
    hub_b = StreamHub(RedisBackend(settings.REDIS_URL))
    await hub_a.backend.start(hub_a)
    await hub_b.backend.start(hub_b)
    recorder = Recorder()
    fetches: list[tuple[str, int]] = []

    async def fetch(message_id: str, after: int) -> list[dict]:
        fetches.append((message_id, after))
        return await hub_b.replay(message_id, after) or []

    outbox_b = Outbox(recorder.send, fetch)
    outbox_b.start()
    await hub_b.subscribe("conv-x", outbox_b)

    # when process A streams a 200-token reply
    stream = hub_a.open_reply("conv-x", "msg-x")
    for i in range(200):
        stream.push(f"{i} ")
        if i % 20 == 0:
            await asyncio.sleep(0.001)
    stream.finish({"type": "message.done", "message_id": "msg-x", "last_seq": 200})
    for _ in range(200):
        await asyncio.sleep(0.01)
        if recorder.frames and recorder.frames[-1]["type"] == "message.done":
            break

    # then the socket on process B got every token in order, then done
    assert [s for s, _ in recorder.tokens()] == list(range(1, 201))
    assert recorder.frames[-1]["type"] == "message.done"
    # and a late joiner on B can replay the whole reply from the Redis log
    replay = await hub_b.replay("msg-x", after_seq=150)
    assert replay[0]["seq"] == 151 and replay[-1]["type"] == "message.done"
    await outbox_b.stop()
    await hub_b.unsubscribe("conv-x", outbox_b)
    await hub_a.backend.close()
    await hub_b.backend.close()


@needs_redis
async def test_a_process_ignores_its_own_relayed_frames():
    hub = StreamHub(RedisBackend(settings.REDIS_URL))
    await hub.backend.start(hub)
    recorder = Recorder()
    outbox = Outbox(recorder.send, lambda m, a: asyncio.sleep(0, result=[]))
    outbox.start()
    await hub.subscribe("conv-self", outbox)
    hub.publish("conv-self", {"type": "pong"})
    await asyncio.sleep(0.3)
    assert recorder.frames == [{"type": "pong"}]
    await outbox.stop()
    await hub.backend.close()
