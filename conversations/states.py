"""The conversation state machine's legal moves, in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from conversations.exceptions import IllegalTransition
from conversations.models import Conversation, ConversationState, ConversationTransition

logger = logging.getLogger(__name__)

S = ConversationState

# A turn: waiting_input -> recognizing_intent -> calling_ai -> generating -> waiting_input.
# Timeout and error end a turn; the next message starts a new one from there.
ALLOWED: dict[str, frozenset[str]] = {
    S.WAITING_INPUT: frozenset({S.RECOGNIZING_INTENT, S.CALLING_AI, S.HANDOFF}),
    S.RECOGNIZING_INTENT: frozenset({S.CALLING_AI, S.WAITING_INPUT, S.ERROR, S.TIMEOUT}),
    S.CALLING_AI: frozenset({S.GENERATING, S.WAITING_INPUT, S.ERROR, S.TIMEOUT}),
    S.GENERATING: frozenset({S.WAITING_INPUT, S.ERROR, S.TIMEOUT}),
    S.TIMEOUT: frozenset({S.RECOGNIZING_INTENT, S.CALLING_AI, S.WAITING_INPUT}),
    S.ERROR: frozenset({S.RECOGNIZING_INTENT, S.CALLING_AI, S.WAITING_INPUT}),
    S.HANDOFF: frozenset({S.WAITING_INPUT}),
}


@dataclass(frozen=True)
class Transition:
    """A move that happened; stored by `record` (turns store theirs in one INSERT at the end)."""

    from_state: str
    to_state: str
    at: datetime
    reason: str = ""


def transition(conversation: Conversation, to: str, *, reason: str = "") -> Transition | None:
    """Move the conversation to `to` in memory (the caller saves); None when already there.

    Raises:
        IllegalTransition: the move is not in ALLOWED.
    """
    current = conversation.state
    if current == to:
        return None
    if to not in ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"Cannot go from {current} to {to}")
    conversation.state = to
    return happened(conversation.pk, current, to, reason=reason)


def happened(
    conversation_id: int, from_state: str, to: str, *, reason: str = "", at: datetime | None = None
) -> Transition:
    """Log a move as it happens and return it for `record`."""
    logger.info(
        "state transition",
        extra={
            "conversation_pk": conversation_id,
            "from_state": from_state,
            "state": to,
            "reason": reason,
        },
    )
    return Transition(from_state, to, at or timezone.now(), reason)


def record(conversation_id: int, moves: list[Transition]) -> None:
    """Store moves in the conversation's transition history (one INSERT)."""
    if moves:
        ConversationTransition.objects.bulk_create(
            ConversationTransition(
                conversation_id=conversation_id,
                from_state=move.from_state,
                to_state=move.to_state,
                reason=move.reason,
                at=move.at,
            )
            for move in moves
        )


def sources_of(to: str) -> frozenset[str]:
    """Every state from which `to` may be entered (itself included: a no-op move)."""
    return frozenset(state for state, targets in ALLOWED.items() if to in targets) | {to}


def transition_in_db(
    conversation_id: int, to: str, *, only_if: dict[str, object] | None = None, **fields: object
) -> bool:
    """Move a stored conversation to `to` in one conditional UPDATE (no read, no lock).

    Returns False, changing nothing, when its current state may not move to `to` or the row
    does not match `only_if` (e.g. the turn it belongs to is no longer the running one).
    """
    updated = Conversation.objects.filter(
        pk=conversation_id, state__in=sources_of(to), **(only_if or {})
    ).update(state=to, **fields)
    return updated == 1
