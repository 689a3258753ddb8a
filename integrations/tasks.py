"""Celery tasks of the integration API: thin wrappers around integrations.webhooks."""

from __future__ import annotations

from celery import Task, shared_task
from celery.exceptions import Retry

from integrations import idempotency, webhooks


@shared_task(bind=True, name="integrations.deliver_webhook", ignore_result=True)
def deliver_webhook_task(self: Task, delivery_id: int, attempt: int = 1) -> Retry | None:
    """One attempt to send a webhook delivery; a failure the service retries comes back later."""
    outcome = webhooks.deliver(delivery_id, attempt=attempt)
    if outcome.retry_in is None:
        return None
    # The service counts attempts and stops at WEBHOOK_MAX_ATTEMPTS, so Celery's own limit is
    # off; the next attempt number travels with the task (only one runner may claim it). A
    # worker gets the Retry raised (the task shows as retrying); eager Celery (no broker) gets it
    # returned, because raised it would propagate (task_eager_propagates) instead of running
    # the retry, which eager mode does at once.
    return self.retry(
        args=[delivery_id, attempt + 1],
        countdown=outcome.retry_in,
        max_retries=None,
        throw=not self.request.is_eager,
    )


@shared_task(name="integrations.requeue_webhook_deliveries", ignore_result=True)
def requeue_webhook_deliveries_task() -> int:
    """Periodic: queue again pending deliveries whose task was lost (idempotent)."""
    return webhooks.deliveries_requeue_overdue()


@shared_task(name="integrations.purge_webhook_deliveries", ignore_result=True)
def purge_webhook_deliveries_task() -> int:
    """Periodic: delete deliveries older than WEBHOOK_KEEP_DAYS."""
    return webhooks.deliveries_purge()


@shared_task(name="integrations.purge_idempotency_records", ignore_result=True)
def purge_idempotency_records_task() -> int:
    """Periodic: delete Idempotency-Key records older than API_IDEMPOTENCY_HOURS."""
    return idempotency.idempotency_purge()
