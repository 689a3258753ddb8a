"""Re-labelling stored user messages with the serving classifier (after a new one is promoted).

Bulk work, so it runs in batches on the `nlu` Celery queue (conversations/tasks.py), never on a
web process's online path. The recorded view of the classifier (`intent_scores`) is replaced;
the intent the conversation acted on (`intent`, `intent_source`) is history and stays.
"""

from __future__ import annotations

import logging

from conversations.models import Message, MessageRole
from nlu.predict import classify_texts

logger = logging.getLogger(__name__)

# Messages per task: one task is a few batches of the classifier, seconds at most.
TASK_SIZE = 500


def messages_relabel(message_ids: list[int]) -> int:
    """Store the serving model's top intents on these user messages; returns how many."""
    messages = list(
        Message.objects.filter(pk__in=message_ids, role=MessageRole.USER).only("pk", "text")
    )
    results = classify_texts([m.text for m in messages])
    changed = []
    for message, result in zip(messages, results, strict=True):
        if result is None:
            continue
        message.intent_scores = [[name, round(score, 4)] for name, score in result.top]
        changed.append(message)
    Message.objects.bulk_update(changed, ["intent_scores"], batch_size=500)
    logger.info("messages relabelled", extra={"count": len(changed)})
    return len(changed)


def relabel_batches(message_ids: list[int]) -> list[list[int]]:
    """Split ids into task-sized batches."""
    return [message_ids[i : i + TASK_SIZE] for i in range(0, len(message_ids), TASK_SIZE)]
