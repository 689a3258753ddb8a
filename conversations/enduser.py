"""One end user's data, for the integrator who holds it: export it, or erase it, with a record.

An API conversation names its person with `Conversation.end_user`, the integrator's own id
(their CRM id, say), and belongs to the API key's owner. Both services look only within that
owner's conversations, so one tenant can never reach another's end users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, QuerySet

from conversations.models import (
    Conversation,
    EndUserDataAction,
    EndUserDataRequest,
    Message,
    MessageRole,
    SlotValue,
)
from conversations.streams import logs_forget

logger = logging.getLogger(__name__)


def end_user_conversations(*, owner_id: int, end_user: str) -> QuerySet[Conversation]:
    """The owner's conversations with this end user (never anyone else's)."""
    return Conversation.objects.filter(user_id=owner_id, end_user=end_user)


@dataclass(frozen=True)
class Erased:
    """How much a request touched."""

    conversations: int
    messages: int


def end_user_export(*, owner: AbstractBaseUser, end_user: str, requested_by: str) -> dict[str, Any]:
    """Everything stored about the end user, personal values decrypted (it is their data).

    Three queries whatever the number of conversations, plus the audit record.
    """
    conversations = list(end_user_conversations(owner_id=owner.pk, end_user=end_user))
    ids = [c.pk for c in conversations]
    messages: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for message in Message.objects.filter(conversation_id__in=ids).order_by(
        "conversation_id", "sequence"
    ):
        messages[message.conversation_id].append(
            {
                "id": str(message.public_id),
                "sequence": message.sequence,
                "role": message.role,
                "text": message.text,
                "status": message.status,
                "created_at": message.created_at.isoformat(),
            }
        )
    slots: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for slot in SlotValue.objects.filter(conversation_id__in=ids).order_by("conversation", "name"):
        slots[slot.conversation_id].append(
            {"name": slot.name, "kind": slot.kind, "value": slot.value}  # decrypted on load
        )
    _record(
        EndUserDataAction.EXPORT,
        owner=owner,
        end_user=end_user,
        requested_by=requested_by,
        counted=Erased(len(conversations), sum(len(m) for m in messages.values())),
    )
    return {
        "end_user": end_user,
        "conversations": [
            {
                "id": str(c.public_id),
                "title": c.title,
                "state": c.state,
                "created_at": c.created_at.isoformat(),
                "last_active": c.last_active.isoformat(),
                "closed_at": c.closed_at.isoformat() if c.closed_at else None,
                "messages": messages[c.pk],
                "slots": slots[c.pk],
            }
            for c in conversations
        ],
    }


def end_user_erase(*, owner: AbstractBaseUser, end_user: str, requested_by: str) -> Erased:
    """Delete the end user's conversations with everything in them; keep an audit record.

    Erasing someone with nothing stored is not an error (a retried erase, or a person who never
    chatted): it is recorded with zero counts.
    """
    with transaction.atomic():
        found = end_user_conversations(owner_id=owner.pk, end_user=end_user)
        counts = found.aggregate(
            conversations=Count("pk", distinct=True), messages=Count("messages")
        )
        replies = [
            str(pk)
            for pk in Message.objects.filter(
                conversation__in=found, role=MessageRole.ASSISTANT
            ).values_list("public_id", flat=True)
        ]
        found.delete()  # messages, slots, transitions, grants and codes cascade
        # The replies' token logs in Redis hold their text too (for an hour): gone with them.
        transaction.on_commit(lambda: logs_forget(replies))
        erased = Erased(
            conversations=counts["conversations"] or 0, messages=counts["messages"] or 0
        )
        _record(
            EndUserDataAction.ERASE,
            owner=owner,
            end_user=end_user,
            requested_by=requested_by,
            counted=erased,
        )
    return erased


def _record(
    action: str, *, owner: AbstractBaseUser, end_user: str, requested_by: str, counted: Erased
) -> None:
    """The audit record of a request, and its log line (counts only: no one's data)."""
    EndUserDataRequest.objects.create(
        action=action,
        owner=owner,
        owner_username=owner.get_username(),
        end_user=end_user,
        requested_by=requested_by,
        conversations=counted.conversations,
        messages=counted.messages,
    )
    logger.info(
        "end user data request",
        extra={"action": action, "owner_id": owner.pk, "conversations": counted.conversations},
    )
