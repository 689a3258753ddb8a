"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from nlu.llm import llm_ping

CHECK_TIMEOUT = 3.0


async def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and its event loop answers."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()


def _cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was stored")
    cache.delete(key)


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned another message")


async def readyz(request: HttpRequest) -> JsonResponse:
    """Database, cache, channel layer and LLM endpoint: JSON detail, 503 when any fails."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": sync_to_async(_database, thread_sensitive=False),
        "cache": sync_to_async(_cache, thread_sensitive=False),
        "channel_layer": _channel_layer,
        "llm": llm_ping,
    }
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    detail = dict(zip(checks, results, strict=True))
    ready = all(result["ok"] for result in results)
    return JsonResponse({"ready": ready, "checks": detail}, status=200 if ready else 503)


async def _run(check: Callable[[], Awaitable[None]]) -> dict[str, object]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except Exception as exc:  # a probe reports every failure, whatever its kind
        return {"ok": False, "error": type(exc).__name__, "ms": _ms(started)}
    return {"ok": True, "ms": _ms(started)}


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
