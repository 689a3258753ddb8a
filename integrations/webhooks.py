"""Outbound webhooks: events become signed HTTP POSTs to the URLs staff registered.

`webhook_emit` is called by the domain services inside their transaction; after it commits, one
`WebhookDelivery` is stored per matching active webhook and the `integrations.deliver_webhook`
task is queued for each. The lookup and the rows come after the commit, not inside it, so the
chat turn's transaction (and the row lock it holds) gets no longer and a webhook problem cannot
roll a turn back; the price is that a process dying in the instant between the two loses the
event. `deliver` makes one attempt and decides what happens next (done, retry
later, give up); the task only schedules the retry. Receivers check `Chatsite-Signature` with
`verify_signature` (or the same few lines in their language, docs/webhooks.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from integrations.models import Webhook, WebhookDelivery, WebhookDeliveryStatus, WebhookEvent

logger = logging.getLogger(__name__)

Payload = dict[str, Any]
# What a lazy emitter's builder returns: the owner of the conversation and the event's data;
# None when there is nothing to send after all (the row is gone).
EventData = tuple[int | None, Payload]

USER_AGENT = "chatsite-webhooks/1"
CONNECT_TIMEOUT = 3.0
# For sending the request and for each read of the answer; the body is never read.
TIMEOUT = 10.0
RETRY_BASE_SECONDS = 10.0
RETRY_CAP_SECONDS = 3600.0
# A pending delivery this far past its due time lost its task (broker down at commit, worker
# killed mid-attempt) and is queued again. Well above an attempt's worst case (~25 s).
REQUEUE_AFTER = timedelta(minutes=5)
REQUEUE_BATCH = 500
# 4xx means "your request is wrong" and retrying cannot fix it, except these two: the receiver
# timed out or asks us to slow down.
RETRYABLE_4XX = frozenset({408, 429})

PENDING = WebhookDeliveryStatus.PENDING
SUCCEEDED = WebhookDeliveryStatus.SUCCEEDED
FAILED = WebhookDeliveryStatus.FAILED


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt did. `retry_in`: seconds until the next attempt; None: no more."""

    status: str  # succeeded, pending (will retry), failed, skipped (nothing to do)
    attempt: int
    status_code: int | None = None
    error: str = ""
    retry_in: float | None = None


# --- Webhooks -----------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


def webhook_save(webhook: Webhook) -> Webhook:
    """Store a new or edited webhook; a new one gets its signing secret.

    Raises:
        ValueError: an event name that does not exist.
    """
    unknown = set(webhook.events) - set(WebhookEvent.values)
    if unknown:
        raise ValueError(f"unknown webhook events: {sorted(unknown)}")
    webhook.events = [e for e in WebhookEvent.values if e in set(webhook.events)]
    if not webhook.secret:
        webhook.secret = new_secret()
    webhook.save()
    return webhook


# --- Emitting -----------------------------------------------------------------------------------


def webhook_emit(event: str, *, owner_id: int | None, payload: Payload) -> None:
    """Queue `event` for every active webhook that wants it, once the transaction commits.

    `owner_id` is the user owning the conversation (None: an anonymous visitor's); a tenant's
    webhook only gets its own events, one without an owner gets all. `payload` must be JSON
    (datetimes and UUIDs are fine). Costs one query after commit when no webhook matches,
    nothing inside the caller's transaction; a rolled-back change sends nothing.
    """
    _check_event(event)
    transaction.on_commit(lambda: _emit_safely(event, owner_id, payload))


def webhook_emit_lazy(event: str, build: Callable[[], EventData | None]) -> None:
    """Like `webhook_emit`, but the owner and payload are only built if some webhook listens.

    For the chat hot path: `build` runs after commit (so it reads committed rows) and only when
    an active webhook wants `event`; with none, the whole event costs one query.
    """
    _check_event(event)

    def emit() -> None:
        if not _listened(event):
            return
        data = build()
        if data is not None:
            _emit_now(event, *data)

    transaction.on_commit(lambda: _guarded(emit, event))


def _check_event(event: str) -> None:
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")


def _emit_safely(event: str, owner_id: int | None, payload: Payload) -> None:
    _guarded(lambda: _emit_now(event, owner_id, payload), event)


def _guarded(run: Callable[[], None], event: str) -> None:
    # Runs after the caller's commit: the chat turn (or whatever emitted) already happened and
    # must not look failed because its webhook could not be queued.
    try:
        run()
    except Exception:
        logger.exception("webhook event could not be queued", extra={"event": event})


def _active_for(event: str) -> QuerySet[Webhook]:
    hooks = Webhook.objects.filter(is_active=True)
    if connection.features.supports_json_field_contains:
        hooks = hooks.filter(events__contains=[event])  # PostgreSQL: jsonb @>
    return hooks


def _listened(event: str) -> bool:
    """Whether any active webhook wants `event` (one query)."""
    if connection.features.supports_json_field_contains:
        return _active_for(event).exists()
    # SQLite cannot look inside a JSON list: read the (few) lists.
    return any(event in events for events in _active_for(event).values_list("events", flat=True))


def _emit_now(event: str, owner_id: int | None, payload: Payload) -> None:
    hooks = _active_for(event).filter(Q(owner__isnull=True) | Q(owner_id=owner_id))
    targets = [pk for pk, events in hooks.values_list("pk", "events") if event in events]
    if not targets:
        return
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook_id=pk, event=event, payload=payload, next_attempt_at=now, created_at=now
            )
            for pk in targets
        ]
    )
    _enqueue([(d.pk, 1) for d in deliveries])
    logger.info("webhook event queued", extra={"event": event, "deliveries": len(deliveries)})


def _enqueue(jobs: Iterable[tuple[int, int]]) -> None:
    from integrations.tasks import deliver_webhook_task  # the task module imports this one

    for delivery_id, attempt in jobs:
        deliver_webhook_task.delay(delivery_id, attempt)


# --- Signing ------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` with the webhook's secret."""
    signed = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `Chatsite-Signature` value: `t=<unix seconds>,v1=<hex>`."""
    return f"t={int(timestamp)},v1={sign(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Whether `header` (a `Chatsite-Signature`) signs `body` with `secret`, recently enough.

    The timestamp must be within `tolerance_seconds` of `now`, so a captured request cannot be
    replayed later. Several `v1=` entries are accepted (any one may match).
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body)
    # compare_digest on every candidate: the time taken says nothing about how much matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


# --- Delivering ---------------------------------------------------------------------------------


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body POSTed for a delivery; the same bytes on every attempt."""
    document = {
        "id": str(delivery.public_id),
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(
        document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")
    ).encode()


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): about 10, 20, 40 ... 3600.

    Jitter spreads retries of many deliveries that failed together (a receiver outage) and
    takes at most a fifth off, so each wait is still longer than the one before, until the cap.
    """
    ceiling = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_CAP_SECONDS)
    return ceiling * random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not a secret)


def deliver(delivery_id: int, *, attempt: int | None = None) -> DeliveryOutcome:
    """Make attempt number `attempt` (default: the next one) to send a delivery, and record it.

    Only one runner gets each attempt number (a conditional UPDATE claims it), so a task queued
    twice, or re-queued by the sweeper while the original still runs, sends once. A delivery
    that is no longer pending (succeeded, failed, deleted) is left alone.
    """
    if attempt is None:
        current = (
            WebhookDelivery.objects.filter(pk=delivery_id)
            .values_list("attempts", flat=True)
            .first()
        )
        if current is None:
            return DeliveryOutcome(status="skipped", attempt=0)
        attempt = current + 1
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=PENDING, attempts=attempt - 1
    ).update(attempts=attempt)
    if not claimed:
        return DeliveryOutcome(status="skipped", attempt=attempt)
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    if not delivery.webhook.is_active:
        return _record(delivery, attempt, FAILED, None, "webhook is inactive")

    status_code, error = _post(delivery)
    if status_code is not None and 200 <= status_code < 300:
        return _record(delivery, attempt, SUCCEEDED, status_code, "")
    permanent = status_code is not None and status_code < 500 and status_code not in RETRYABLE_4XX
    if permanent or attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        return _record(delivery, attempt, FAILED, status_code, error)
    return _record(delivery, attempt, PENDING, status_code, error, retry_in=retry_delay(attempt))


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST: (status code, short error) or (None, what went wrong on the network)."""
    body = delivery_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Chatsite-Event": delivery.event,
        "Chatsite-Delivery": str(delivery.public_id),
        "Chatsite-Signature": signature_header(delivery.webhook.secret, timestamp, body),
    }
    timeout = httpx2.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)
    try:
        # Redirects are not followed: the signed body would go to a URL staff never registered.
        with (
            httpx2.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", delivery.webhook.url, content=body, headers=headers) as response,
        ):
            code = response.status_code  # the body is never read: nothing in it matters to us
    except httpx2.TimeoutException as exc:
        return None, _short(f"timeout ({type(exc).__name__})")
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        return None, _short(f"{type(exc).__name__}: {exc}")
    if 200 <= code < 300:
        return code, ""
    if 300 <= code < 400:
        return code, f"HTTP {code} (redirects are not followed: register the final URL)"
    return code, f"HTTP {code}"


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"


def _record(
    delivery: WebhookDelivery,
    attempt: int,
    status: str,
    status_code: int | None,
    error: str,
    *,
    retry_in: float | None = None,
) -> DeliveryOutcome:
    now = timezone.now()
    next_at: datetime | None = now + timedelta(seconds=retry_in) if retry_in is not None else None
    # Conditional on the attempt: a "Redeliver now" that reset the row meanwhile wins.
    WebhookDelivery.objects.filter(pk=delivery.pk, attempts=attempt).update(
        status=status,
        last_status_code=status_code,
        last_error=error,
        next_attempt_at=next_at,
        delivered_at=now if status == SUCCEEDED else None,
    )
    log = logger.info if status == SUCCEEDED else logger.warning
    log(
        "webhook delivery attempt",
        extra={
            "delivery_id": str(delivery.public_id),
            "event": delivery.event,
            "webhook_pk": delivery.webhook_id,
            "attempt": attempt,
            "status": status,
            "status_code": status_code,
            "error": error,
        },
    )
    return DeliveryOutcome(
        status=status, attempt=attempt, status_code=status_code, error=error, retry_in=retry_in
    )


# --- Staff actions and housekeeping -------------------------------------------------------------


def deliveries_redeliver(delivery_ids: Iterable[int]) -> int:
    """Send deliveries again from the first attempt (staff's "Redeliver now"); returns how many.

    The receiver sees the same `Chatsite-Delivery` id, so it can tell a resend from a new event.
    """
    ids = list(delivery_ids)
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=ids).update(
            status=PENDING,
            attempts=0,
            last_error="",
            next_attempt_at=timezone.now(),
            delivered_at=None,
        )
        # A broker outage must not fail staff's action: the sweeper queues them later.
        transaction.on_commit(
            lambda: _guarded(lambda: _enqueue((pk, 1) for pk in ids), "redeliver")
        )
    return count


def deliveries_requeue_overdue() -> int:
    """Queue again pending deliveries whose task was lost; returns how many (periodic)."""
    now = timezone.now()
    overdue = list(
        WebhookDelivery.objects.filter(status=PENDING, next_attempt_at__lt=now - REQUEUE_AFTER)
        .order_by("next_attempt_at")
        .values_list("pk", "attempts")[:REQUEUE_BATCH]
    )
    jobs = []
    for pk, attempts in overdue:
        # Pushed forward first, so the next sweep does not queue it again while it waits.
        if WebhookDelivery.objects.filter(pk=pk, status=PENDING, attempts=attempts).update(
            next_attempt_at=now
        ):
            jobs.append((pk, attempts + 1))
    _enqueue(jobs)
    if jobs:
        logger.warning("webhook deliveries re-queued", extra={"count": len(jobs)})
    return len(jobs)


def deliveries_purge() -> int:
    """Delete deliveries older than WEBHOOK_KEEP_DAYS, whatever their status; returns how many."""
    before = timezone.now() - timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    deleted, _ = WebhookDelivery.objects.filter(created_at__lt=before).delete()
    return deleted
