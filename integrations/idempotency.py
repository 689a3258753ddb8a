"""`Idempotency-Key` on POSTs that create something: a retry gets the first response.

The first request with a key claims it (a row under a unique constraint, so two concurrent
requests cannot both claim it); when it succeeds its response is stored, and every later request
with the same key and body gets that response back, with `Idempotent-Replayed: true`, without the
work being done again. The same key with another body or on another endpoint is refused (422).
A request that fails is forgotten, so its retry runs afresh. Records live
API_IDEMPOTENCY_HOURS.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.exceptions import (
    IdempotencyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
)
from integrations.models import IdempotencyRecord

HEADER = "Idempotency-Key"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces (fullmatch)


@dataclass(frozen=True)
class Claim:
    """The outcome of presenting a key: a fresh claim to run, or the response to replay."""

    record: IdempotencyRecord
    replay: bool


def fingerprint(data: Any) -> str:
    """SHA-256 of the parsed body in canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_claim(*, owner_id: int, key: str, endpoint: str, body_hash: str) -> Claim:
    """Claim `key` for this request, or find the finished request that claimed it.

    Raises:
        IdempotencyKeyInvalid: the key is empty, too long or not printable ASCII.
        IdempotencyKeyReused: the key was used with another body or endpoint.
        IdempotencyInProgress: the first request with the key has not finished.
    """
    if not _VALID_KEY.fullmatch(key):
        raise IdempotencyKeyInvalid(
            f"{HEADER} must be 1-255 printable ASCII characters without spaces"
        )
    expired_before = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    for _ in range(2):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    owner_id=owner_id, key=key, endpoint=endpoint, fingerprint=body_hash
                )
            return Claim(record=record, replay=False)
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(owner_id=owner_id, key=key).first()
        if record is None:
            continue  # abandoned between our insert and this read: claim it again
        if record.created_at < expired_before:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            continue
        if record.endpoint != endpoint or record.fingerprint != body_hash:
            raise IdempotencyKeyReused(
                f"This {HEADER} was already used with a different request",
                extra={"endpoint": record.endpoint},
            )
        if record.status_code is None:
            raise IdempotencyInProgress(
                f"A request with this {HEADER} is still running; retry shortly",
                extra={"retry_after": 1},
            )
        return Claim(record=record, replay=True)
    raise IdempotencyInProgress(
        f"A request with this {HEADER} is still running; retry shortly", extra={"retry_after": 1}
    )


def idempotency_finish(record: IdempotencyRecord, *, status_code: int, body: Any) -> None:
    """Store the first request's response for its retries."""
    record.status_code = status_code
    record.response = body
    record.save(update_fields=["status_code", "response"])


def idempotency_abandon(record: IdempotencyRecord) -> None:
    """Forget the claim of a request that failed: a retry runs it again."""
    IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def idempotency_purge() -> int:
    """Delete records older than API_IDEMPOTENCY_HOURS; returns how many."""
    before = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=before).delete()
    return deleted


def run_idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    """Run a creating POST once per `Idempotency-Key` (no key: just run it).

    The handler's successful response (2xx-4xx, not 5xx) is stored; an exception or a server
    error forgets the claim so the retry runs afresh.
    """
    key = request.headers.get(HEADER)
    if key is None or not request.user.is_authenticated:
        # Anonymous browser sessions have no account to keep records under; the chat page
        # makes its writes idempotent with client ids instead.
        return handler()
    claim = idempotency_claim(
        owner_id=request.user.pk,
        key=key,
        endpoint=f"{request.method} {request.path}",
        body_hash=fingerprint(request.data),
    )
    if claim.replay:
        return Response(
            claim.record.response,
            status=claim.record.status_code,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = handler()
    except BaseException:
        idempotency_abandon(claim.record)
        raise
    if response.status_code >= 500:
        idempotency_abandon(claim.record)
    else:
        idempotency_finish(claim.record, status_code=response.status_code, body=response.data)
    return response
