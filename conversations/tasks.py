"""Celery tasks of the chat domain: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from conversations import services


@shared_task(name="conversations.recover_stale_replies", ignore_result=True)
def recover_stale_replies_task() -> int:
    """Periodic: end turns whose server process died mid-reply (idempotent)."""
    return services.replies_recover_stale()


@shared_task(name="conversations.relabel_messages_batch", ignore_result=True)
def relabel_messages_batch_task(message_ids: list[int]) -> int:
    """Bulk, on the nlu queue: the serving classifier's scores for stored user messages."""
    from conversations.relabel import messages_relabel

    return messages_relabel(message_ids)
