"""Writes of the chat domain. Consumers, views and tasks call these; nothing else writes."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations import dialogue, pii, selectors, states
from conversations.exceptions import ConversationClosed, TurnInProgress
from conversations.models import (
    AssistantProfile,
    Conversation,
    ConversationState,
    Message,
    MessageRole,
    MessageSource,
    MessageStatus,
    SlotChange,
    SlotValue,
)
from conversations.moderation import Moderated, moderate_input
from conversations.selectors import Actor, is_stale
from integrations.webhooks import webhook_emit, webhook_emit_lazy
from nlu.llm import ChatMessage
from nlu.models import Intent
from nlu.parse import message_text_check
from nlu.selectors import intent_list_active

logger = logging.getLogger(__name__)

TITLE_CHARS = 60


def conversation_create(*, actor: Actor, title: str = "", end_user: str = "") -> Conversation:
    """Start an empty conversation owned by the actor (for `end_user`, the integrator's id)."""
    return Conversation.objects.create(
        user_id=actor.user_id,
        session_key="" if actor.user_id is not None else actor.session_key,
        title=title[:200],
        end_user=end_user,
    )


def conversation_close(*, conversation: Conversation) -> Conversation:
    """Close the conversation: its history stays readable, new messages are refused.

    Closing a closed conversation changes nothing (a retried close is harmless). A reply still
    streaming finishes and is stored as usual.
    """
    with transaction.atomic():
        now = timezone.now()
        closed = Conversation.objects.filter(pk=conversation.pk, closed_at__isnull=True).update(
            closed_at=now
        )
        if closed:
            conversation.closed_at = now
            webhook_emit(
                "conversation.closed",
                owner_id=conversation.user_id,
                payload={
                    "conversation_id": str(conversation.public_id),
                    "end_user": conversation.end_user,
                    "closed_at": now.isoformat(),
                },
            )
        else:
            conversation.refresh_from_db(fields=["closed_at"])
    return conversation


def clean_text(text: object) -> str:
    """A user message's text, checked (nlu.parse.message_text_check) and stripped.

    Raises:
        EmptyMessage: nothing but whitespace.
        MessageTooLong: over CHAT_MAX_MESSAGE_CHARS characters.
    """
    return message_text_check(text).strip()


@dataclass
class TurnStarted:
    """What turn_start did: the user message and its reply, and whether they are new.

    With intents defined, the dialogue decides the reply (`dialogue` and `intents` are set, and
    the prompt is built once it has, by dialogue_apply); without, `prompt` is ready.
    """

    user_message: Message
    reply: Message
    created: bool
    prompt: list[ChatMessage] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # newest first
    dialogue: dialogue.DialogueState | None = None
    intents: dict[str, Intent] = field(default_factory=dict)


def turn_start(
    *,
    conversation_id: int,
    text: str,
    client_id: uuid.UUID,
    source: str = MessageSource.WEB,
) -> TurnStarted:
    """Store a user message and an empty streaming reply, once per client_id.

    A retried send (same client_id) returns the turn it already started. One turn runs at a time
    per conversation: the conversation row is locked, and a second message while a reply streams
    is refused with turn_in_progress (the client may send it again when the reply is done).

    Raises:
        EmptyMessage, MessageTooLong: the text is not acceptable.
        ContentBlocked: it holds a word staff block (nothing is stored).
        TurnInProgress: another reply in this conversation is still streaming.
        ConversationClosed: the conversation was closed.
    """
    # Sensitive words staff mask are masked here, before the message is stored or seen by a model.
    moderated = moderate_input(clean_text(text))
    try:
        return _turn_start(
            conversation_id=conversation_id, moderated=moderated, client_id=client_id, source=source
        )
    except IntegrityError:
        # Two sends of one client_id raced past the lock (SQLite has no row locks): the loser
        # finds the winner's turn.
        return _turn_start(
            conversation_id=conversation_id, moderated=moderated, client_id=client_id, source=source
        )


@transaction.atomic
def _turn_start(
    *, conversation_id: int, moderated: Moderated, client_id: uuid.UUID, source: str
) -> TurnStarted:
    text = moderated.text
    # Every query here runs while the conversation row is locked, on the one thread Channels
    # gives the ORM: 10 statements, BEGIN and COMMIT included (bench/ws_stream.py counts them),
    # and with intents defined two more, plus one to read the open task's slots.
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    existing = conversation.messages.filter(client_id=client_id).select_related("reply").first()
    if existing is not None:
        return TurnStarted(user_message=existing, reply=existing.reply, created=False)
    if conversation.closed_at is not None:
        raise ConversationClosed("This conversation is closed: start a new one")

    moves: list[states.Transition] = []
    # Read after the lock is held, in a statement of its own: joined into the locking SELECT,
    # PostgreSQL would show the reply as of before the wait (a race that let two turns run).
    running = (
        Message.objects.filter(pk=conversation.streaming_reply_id).first()
        if conversation.streaming_reply_id
        else None
    )
    if running is not None and running.status == MessageStatus.STREAMING:
        if not is_stale(running):
            raise TurnInProgress(
                "The previous reply is still being written",
                extra={"reply_id": str(running.public_id)},
            )
        running.status = MessageStatus.INTERRUPTED
        running.error_code = "turn_stale"
        running.save(update_fields=["status", "error_code", "updated_at"])
        logger.warning(
            "stale turn recovered",
            extra={
                "conversation_id": str(conversation.public_id),
                "message_id": str(running.public_id),
            },
        )
        moves.append(
            states.happened(
                conversation.pk, conversation.state, ConversationState.ERROR, reason="turn_stale"
            )
        )
        conversation.state = ConversationState.ERROR

    # The newest messages give both the next sequence number and the prompt's history.
    recent = list(
        conversation.messages.order_by("-sequence").values_list(
            "sequence", "role", "text", "is_fallback"
        )[: settings.LLM_HISTORY_MESSAGES]
    )
    last = recent[0][0] if recent else 0
    now = timezone.now()
    if last and conversation.last_active < now - timedelta(
        minutes=settings.CHAT_SESSION_IDLE_MINUTES
    ):
        conversation.memory_from_sequence = last + 1
        conversation.intent = ""
        conversation.context = {}
        logger.info(
            "conversation memory reset after idle",
            extra={"conversation_id": str(conversation.public_id)},
        )
    # Stored with phone numbers and e-mail addresses masked; the dialogue works on `text`.
    stored_text = pii.mask_contacts(text)
    user_message = Message.objects.create(
        conversation=conversation,
        sequence=last + 1,
        role=MessageRole.USER,
        text=stored_text,
        client_id=client_id,
        source=source,
        moderation=moderated.record,
        flagged=moderated.flagged,
    )
    reply = Message.objects.create(
        conversation=conversation,
        sequence=last + 2,
        role=MessageRole.ASSISTANT,
        status=MessageStatus.STREAMING,
        reply_to=user_message,
    )
    intents = {intent.name: intent for intent in intent_list_active()}
    # With intents, the turn first works out what the user wants; without, the model just answers.
    move = states.transition(
        conversation,
        ConversationState.RECOGNIZING_INTENT if intents else ConversationState.CALLING_AI,
        reason="message",
    )
    conversation.last_active = now
    if not conversation.title:
        conversation.title = stored_text[:TITLE_CHARS]
    conversation.streaming_reply = reply
    conversation.save(
        update_fields=[
            "state",
            "last_active",
            "title",
            "streaming_reply",
            "memory_from_sequence",
            "intent",
            "context",
        ]
    )
    states.record(conversation.pk, [*moves, *([move] if move else [])])
    history = [
        (role, old_text)
        for sequence, role, old_text, is_fallback in recent
        if sequence >= conversation.memory_from_sequence
        and old_text
        and not (role == MessageRole.ASSISTANT and is_fallback)
    ]
    history = [(MessageRole.USER, text), *history]
    if not intents:
        return TurnStarted(
            user_message=user_message, reply=reply, created=True, prompt=build_prompt(history)
        )
    state = dialogue.DialogueState(
        intent=conversation.intent, context=conversation.context, filled=_task_slots(conversation)
    )
    return TurnStarted(
        user_message=user_message,
        reply=reply,
        created=True,
        history=history,
        dialogue=state,
        intents=intents,
    )


def _task_slots(conversation: Conversation) -> dict[str, str]:
    """The open task's slot values, decrypted (only those this task filled)."""
    names = conversation.context.get("filled") or []
    if not names or conversation.context.get("done"):
        return {}
    rows = SlotValue.objects.filter(conversation=conversation, name__in=names)
    return {row.name: row.value for row in rows}


@dataclass(frozen=True)
class HowRecognised:
    """How the user message's intent was found: stored on the message."""

    source: str  # model, cache, llm, dialogue, none
    scores: list[tuple[str, float]]  # the classifier's top intents
    ms: int | None


def dialogue_apply(
    *,
    conversation_id: int,
    reply_id: int,
    user_message_id: int,
    decision: dialogue.Decision,
    history: list[tuple[str, str]],
    recognised: HowRecognised | None = None,
) -> list[ChatMessage]:
    """Store a turn's dialogue decision: slots, intent, context, the state move; mask the message.

    Returns the prompt when the model writes the reply (the moves to calling_ai is recorded
    here), else an empty list: the template reply needs no model and the turn ends from
    recognizing_intent.
    """
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conversation.streaming_reply_id != reply_id:
            # A stale-turn recovery ended this turn meanwhile: change nothing.
            return build_prompt(history) if decision.llm_writes else []
        for write in decision.writes:
            slot_set(
                conversation_id=conversation_id,
                name=write.name,
                kind=write.kind,
                value=write.value,
                personal=write.personal,
            )
        personal = [(w.raw, w.kind) for w in decision.writes if w.personal]
        message = Message.objects.only("text", "public_id").get(pk=user_message_id)
        recognised = recognised or HowRecognised("", [], None)
        Message.objects.filter(pk=user_message_id).update(
            text=pii.mask_known(message.text, personal),
            intent=decision.message_intent,
            intent_source=recognised.source,
            intent_scores=[[name, round(score, 4)] for name, score in recognised.scores],
            nlu_ms=recognised.ms,
        )
        if _low_confidence(recognised):
            _emit_low_confidence(conversation, message, personal, recognised, decision)
        conversation.intent = decision.intent
        conversation.context = decision.context
        move = None
        if decision.llm_writes:
            move = states.transition(conversation, ConversationState.CALLING_AI, reason="llm")
        conversation.save(update_fields=["intent", "context", "state"])
        states.record(conversation_id, [move] if move else [])
    logger.info(
        "dialogue decided",
        extra={
            "conversation_pk": conversation_id,
            "intent": decision.intent,
            "reason": decision.reason,
            "awaiting": decision.context.get("awaiting", ""),
        },
    )
    if not decision.llm_writes:
        return []
    # The newest message goes to the model as typed; the stored history is masked.
    masked = [(role, pii.mask_known(t, personal)) for role, t in history[1:]]
    return build_prompt(
        [history[0], *masked], task=decision.instruction, slots=decision.slots_for_prompt
    )


def build_prompt(
    newest_first: list[tuple[str, str]], *, task: str = "", slots: dict[str, str] | None = None
) -> list[ChatMessage]:
    """The system prompt (with the task and its slot values) plus the history, oldest first.

    At most LLM_HISTORY_MESSAGES messages and LLM_HISTORY_CHARS characters: the newest message
    always goes in (cut to the budget if it alone is over it). Slot values are plaintext here,
    in memory only, so the model can use them; the prompt is never stored or logged.
    """
    budget = settings.LLM_HISTORY_CHARS
    kept: list[ChatMessage] = []
    for role, text in newest_first[: settings.LLM_HISTORY_MESSAGES]:
        if kept and len(text) > budget:
            break
        if not kept:
            text = text[-budget:]
        budget -= len(text)
        kept.append(
            {"role": "assistant" if role == MessageRole.ASSISTANT else "user", "content": text}
        )
    parts = [selectors.system_prompt()]
    if slots:
        known = "\n".join(f"- {label}: {value}" for label, value in slots.items())
        parts.append(f"What the user has told you so far:\n{known}")
    if task:
        parts.append(task)
    system: ChatMessage = {"role": "system", "content": "\n\n".join(parts)}
    return [system, *reversed(kept)]


def replies_recover_stale() -> int:
    """Mark replies left streaming by a dead server process as interrupted; end their turns.

    Returns how many were recovered. Safe to run any number of times, from any process.
    """
    limit = timezone.now() - timedelta(seconds=settings.CHAT_STALE_TURN_SECONDS)
    recovered = 0
    running = Conversation.objects.filter(streaming_reply__isnull=False).values(
        "streaming_reply_id"
    )
    stale_ids = list(
        Message.objects.filter(
            pk__in=running, status=MessageStatus.STREAMING, updated_at__lt=limit
        ).values_list("pk", flat=True)[:500]
    )
    for reply_id in stale_ids:
        with transaction.atomic():
            reply = (
                Message.objects.select_for_update()
                .filter(pk=reply_id, status=MessageStatus.STREAMING, updated_at__lt=limit)
                .first()
            )
            if reply is None:
                continue  # finished or recovered meanwhile
            reply.status = MessageStatus.INTERRUPTED
            reply.error_code = "turn_stale"
            reply.save(update_fields=["status", "error_code", "updated_at"])
            conversation = Conversation.objects.select_for_update().get(pk=reply.conversation_id)
            moves = []
            if conversation.state != ConversationState.ERROR:
                moves.append(
                    states.happened(
                        conversation.pk,
                        conversation.state,
                        ConversationState.ERROR,
                        reason="turn_stale",
                    )
                )
                conversation.state = ConversationState.ERROR
            if conversation.streaming_reply_id == reply.pk:
                conversation.streaming_reply = None
            conversation.save(update_fields=["state", "streaming_reply"])
            states.record(conversation.pk, moves)
            recovered += 1
    if recovered:
        logger.warning("stale turns recovered", extra={"count": recovered})
    return recovered


def assistant_profile_save(profile: AssistantProfile) -> None:
    """Store the staff-edited profile; every process uses the new prompt from the next turn."""
    profile.save()
    cache.delete(selectors.SYSTEM_PROMPT_CACHE_KEY)


def conversation_mark_generating(*, conversation_id: int, reply_id: int) -> bool:
    """The first token has arrived (one conditional UPDATE); False if the state did not allow it.

    The move is stored with the turn's other moves when the reply ends (reply_finish).
    """
    return states.transition_in_db(
        conversation_id, ConversationState.GENERATING, only_if={"streaming_reply_id": reply_id}
    )


@dataclass(frozen=True)
class ReplyOutcome:
    """How a reply ended."""

    text: str
    status: str
    token_count: int
    ttft_ms: int | None
    total_ms: int
    error_code: str = ""
    is_fallback: bool = False
    moderation: list[dict[str, object]] = field(default_factory=list)  # Message.moderation


def turn_end_state(error_code: str) -> str:
    """Where a turn ends: waiting_input, timeout (the model was too slow) or error."""
    if not error_code:
        return ConversationState.WAITING_INPUT
    if error_code == "llm_timeout":
        return ConversationState.TIMEOUT
    return ConversationState.ERROR


def reply_finish(
    *,
    reply_id: int,
    conversation_id: int,
    outcome: ReplyOutcome,
    from_state: str = ConversationState.CALLING_AI,
    moves: tuple[states.Transition, ...] = (),
) -> None:
    """Store the finished reply once, end the turn (waiting_input, or error), store its moves.

    `from_state` is where the turn left the conversation (calling_ai, or generating once the
    first token was recorded); `moves` are the turn's earlier moves, not yet stored.
    """
    now = timezone.now()
    ended = turn_end_state(outcome.error_code)
    with transaction.atomic():
        Message.objects.filter(pk=reply_id).update(
            text=outcome.text,
            status=outcome.status,
            token_count=outcome.token_count,
            ttft_ms=outcome.ttft_ms,
            total_ms=outcome.total_ms,
            error_code=outcome.error_code,
            is_fallback=outcome.is_fallback,
            moderation=outcome.moderation,
            flagged=any(entry["action"] == "flag" for entry in outcome.moderation),
            updated_at=now,
        )
        if states.transition_in_db(
            conversation_id,
            ended,
            only_if={"streaming_reply_id": reply_id},
            last_active=now,
            streaming_reply=None,
        ):
            reason = outcome.error_code or "reply_done"
            last = states.happened(conversation_id, from_state, ended, reason=reason, at=now)
            states.record(conversation_id, [*moves, last])
        else:
            # Something else (a stale-turn recovery, later a hand-off) moved the conversation
            # on meanwhile: keep its state, record the activity.
            Conversation.objects.filter(pk=conversation_id).update(last_active=now)
            states.record(conversation_id, list(moves))
        # After commit, and only if some webhook wants it: the rows are read then (one query).
        webhook_emit_lazy("message.created", lambda: _message_created_event(reply_id))


def _message_created_event(reply_id: int) -> tuple[int | None, dict[str, object]] | None:
    """The message.created webhook payload: the stored (masked) texts, never slot values."""
    reply = Message.objects.select_related("conversation", "reply_to").filter(pk=reply_id).first()
    if reply is None or reply.reply_to is None:
        return None
    asked = reply.reply_to
    return reply.conversation.user_id, {
        "conversation_id": str(reply.conversation.public_id),
        "message": {
            "id": str(asked.public_id),
            "sequence": asked.sequence,
            "role": asked.role,
            "text": asked.text,
            "intent": asked.intent,
            "created_at": asked.created_at.isoformat(),
        },
        "reply": {
            "id": str(reply.public_id),
            "sequence": reply.sequence,
            "text": reply.text,
            "status": reply.status,
            "is_fallback": reply.is_fallback,
            "error_code": reply.error_code,
        },
    }


def _low_confidence(recognised: HowRecognised) -> bool:
    """The classifier's top intent scored below NLU_LOW_CONFIDENCE (an answer to the bot's own
    question is not classified for its intent, so it never counts)."""
    return (
        bool(recognised.scores)
        and recognised.source != "dialogue"
        and recognised.scores[0][1] < settings.NLU_LOW_CONFIDENCE
    )


def _emit_low_confidence(
    conversation: Conversation,
    message: Message,
    personal: list[tuple[str, str]],
    recognised: HowRecognised,
    decision: dialogue.Decision,
) -> None:
    """Queue the intent.low_confidence webhook event (sent after commit)."""
    webhook_emit(
        "intent.low_confidence",
        owner_id=conversation.user_id,
        payload={
            "conversation_id": str(conversation.public_id),
            "message_id": str(message.public_id),
            "text": pii.mask_known(message.text, personal),  # as stored
            "top_intents": [
                {"intent": name, "confidence": round(score, 4)} for name, score in recognised.scores
            ],
            "source": recognised.source,
            "intent": decision.message_intent,
        },
    )


def slot_set(
    *, conversation_id: int, name: str, kind: str, value: str, personal: bool
) -> SlotValue:
    """Fill or correct a slot; the change joins the conversation's history, masked.

    Personal values are encrypted at rest (the field) and get a blind index for lookups; nothing
    but the masked form is ever logged or kept in the history.
    """
    pii_kind = kind if kind in pii.KINDS else "text"
    masked = pii.mask(value, pii_kind) if personal else value[:200]
    index = pii.blind_index(value, pii_kind) if personal else ""
    with transaction.atomic():
        current = (
            SlotValue.objects.select_for_update()
            .filter(conversation_id=conversation_id, name=name)
            .first()
        )
        if current is not None and current.value == value:
            return current
        old_masked = current.masked if current is not None else ""
        if current is None:
            current = SlotValue(conversation_id=conversation_id, name=name)
        current.kind, current.value, current.masked, current.blind_index = (
            kind,
            value,
            masked,
            index,
        )
        current.save()
        SlotChange.objects.create(
            conversation_id=conversation_id, name=name, old_masked=old_masked, new_masked=masked
        )
    logger.info(
        "slot corrected" if old_masked else "slot filled",
        extra={"conversation_pk": conversation_id, "slot": name, "value": masked},
    )
    return current
