"""Bounded thread pools for ASR and TTS: a few run, a few wait, the rest get voice_busy.

CTranslate2 and espeak-ng release the GIL while they work, so threads give real parallelism
without blocking the event loop. Accounting follows the thread's work, not the awaiting
coroutine: a cancelled caller keeps its slot until its work has really finished.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings

from voice.exceptions import VoiceBusy

T = TypeVar("T")


class BoundedPool:
    """A ThreadPoolExecutor with ``max_workers`` running and at most ``max_queued`` waiting."""

    def __init__(self, name: str, *, max_workers: int, max_queued: int) -> None:
        self.name = name
        self.max_workers = max(1, max_workers)
        self.max_queued = max(0, max_queued)
        self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix=f"voice-{name}")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Calls running or waiting now."""
        return self._in_flight

    def submit(self, fn: Callable[..., T], *args: object, wait: bool = True) -> Future[T]:
        """Start fn(*args) in the pool; wait=False refuses to queue behind running work.

        Raises:
            VoiceBusy: no free worker (wait=False) or the queue is full.
        """
        limit = self.max_workers + (self.max_queued if wait else 0)
        with self._lock:
            if self._in_flight >= limit:
                raise VoiceBusy(
                    "Voice processing is busy; please try again in a moment.",
                    extra={"pool": self.name},
                )
            self._in_flight += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        return future

    async def run(self, fn: Callable[..., T], *args: object, wait: bool = True) -> T:
        """Run fn(*args) in the pool and await its result without blocking the loop.

        Raises:
            VoiceBusy: see submit().
        """
        return await asyncio.wrap_future(self.submit(fn, *args, wait=wait))

    def _release(self, _future: Future[object] | None) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop accepting work and let running work finish (tests, process exit)."""
        self._executor.shutdown(wait=True)


_pools: dict[str, BoundedPool] = {}
_pools_lock = threading.Lock()


def _pool(name: str, max_workers: int) -> BoundedPool:
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = BoundedPool(
                name, max_workers=max_workers, max_queued=settings.VOICE_MAX_QUEUED
            )
        return pool


def asr_pool() -> BoundedPool:
    """This process's transcription pool (VOICE_MAX_CONCURRENT_ASR, VOICE_MAX_QUEUED)."""
    return _pool("asr", settings.VOICE_MAX_CONCURRENT_ASR)


def tts_pool() -> BoundedPool:
    """This process's synthesis pool (VOICE_MAX_CONCURRENT_TTS, VOICE_MAX_QUEUED)."""
    return _pool("tts", settings.VOICE_MAX_CONCURRENT_TTS)
