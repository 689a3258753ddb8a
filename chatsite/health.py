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

from nlu.classifier import serving
from nlu.llm import llm_ping

CHECK_TIMEOUT = 3.0
# How long one probe waits for this process's intent-model warm-up before saying "warming".
NLU_WARM_UP_WAIT = 2.0


class NotReady(Exception):  # noqa: N818 (a probe answer, not an error of the product)
    """A check that is not ready yet; its message is safe to show in the probe's body."""


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


async def _nlu() -> str:
    """This process has warmed the serving intent model (or none serves); starts the warm-up
    if nothing did (a server without start-up events), and waits for it a little."""
    future = serving.start_warm_up()
    try:
        async with asyncio.timeout(NLU_WARM_UP_WAIT):
            serving_now = await asyncio.shield(asyncio.wrap_future(future))
    except TimeoutError:
        raise NotReady("nlu warming") from None
    except Exception:
        raise NotReady("nlu warm-up failed") from None  # logged by the warm-up; retried next probe
    loaded = serving.current_model()
    return f"v{loaded.version}" if serving_now and loaded else "no model"


async def readyz(request: HttpRequest) -> JsonResponse:
    """Database, cache, channel layer, LLM endpoint and intent model: JSON detail, 503 when any
    fails."""
    checks: dict[str, Callable[[], Awaitable[object]]] = {
        "database": sync_to_async(_database, thread_sensitive=False),
        "cache": sync_to_async(_cache, thread_sensitive=False),
        "channel_layer": _channel_layer,
        "llm": llm_ping,
        "nlu": _nlu,
    }
    results = await asyncio.gather(*(_run(check) for check in checks.values()))
    detail = dict(zip(checks, results, strict=True))
    ready = all(result["ok"] for result in results)
    return JsonResponse({"ready": ready, "checks": detail}, status=200 if ready else 503)


async def _run(check: Callable[[], Awaitable[object]]) -> dict[str, object]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            detail = await check()
    except NotReady as exc:
        return {"ok": False, "error": "NotReady", "detail": str(exc), "ms": _ms(started)}
    except Exception as exc:  # a probe reports every failure, whatever its kind
        return {"ok": False, "error": type(exc).__name__, "ms": _ms(started)}
    result: dict[str, object] = {"ok": True, "ms": _ms(started)}
    if isinstance(detail, str):
        result["detail"] = detail
    return result


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
