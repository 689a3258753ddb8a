"""Per-key request limits, counted atomically in Redis (or the local cache without Redis)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from integrations.models import ApiKey

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60

_redis: Any = None


def _client() -> Any:
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
    return _redis


def hit(ident: str, now: float | None = None) -> tuple[int, float]:
    """Count one request for `ident` in the current minute: (count so far, seconds left).

    A fixed window with one INCR: every process sees the same counter and concurrent
    requests never both read the old value (DRF's own throttle reads, then writes, in the
    cache, and lets a burst through).
    """
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    left = (window + 1) * WINDOW_SECONDS - now
    key = f"chatsite:throttle:{ident}:{window}"
    if settings.REDIS_URL:
        pipe = _client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS * 2, nx=True)
        count, _ = pipe.execute()
        return int(count), left
    cache.add(key, 0, WINDOW_SECONDS * 2)
    return int(cache.incr(key)), left


class ApiKeyRateThrottle(BaseThrottle):
    """At most the key's rate_limit (else API_RATE_LIMIT_PER_MINUTE) requests a minute."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        auth = request.auth
        if isinstance(auth, ApiKey):
            # The prefix, not the pk: unique for good, so a counter never outlives its key.
            ident, limit = (
                f"key:{auth.prefix}",
                auth.rate_limit or settings.API_RATE_LIMIT_PER_MINUTE,
            )
        elif request.user is not None and request.user.is_authenticated:
            ident, limit = f"user:{request.user.pk}", settings.API_RATE_LIMIT_PER_MINUTE
        else:
            return True  # refused by the permission check anyway
        try:
            count, left = hit(ident)
        except Exception:
            # A cache outage must not take the API down with it: let the request through.
            logger.warning("rate limit counter unavailable", exc_info=True)
            return True
        if count > limit:
            self._wait = left
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
