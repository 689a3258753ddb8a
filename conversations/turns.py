"""Running a turn: store the message, stream the model's reply to every socket, store the reply.

The LLM call is async I/O, so it runs as an asyncio task in the server process that received the
message, not in Celery. The task is not tied to any socket: a reload or a closed tab does not stop
generation, and the reply is stored once, when it ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from channels.db import database_sync_to_async
from django.utils import timezone

from chatsite.exceptions import ApplicationError
from conversations import dialogue, pii, selectors, services, states
from conversations.models import Conversation, ConversationState, MessageSource, MessageStatus
from conversations.moderation import ReplyFilter
from conversations.streams import ReplyStream, get_hub
from nlu.exceptions import LlmUnavailable
from nlu.llm import stream_chat
from nlu.moderation.matcher import EMPTY
from nlu.moderation.registry import acurrent_matcher
from nlu.predict import ClassifierResult, classify
from nlu.recognize import recognize

logger = logging.getLogger(__name__)

# Running turns, kept referenced so the event loop does not drop them half-way.
_running: set[asyncio.Task[None]] = set()
# The same tasks by reply id, and why one was cancelled (turn_cancel), for its stored error code.
_by_reply: dict[str, asyncio.Task[None]] = {}
_cancel_reasons: dict[str, str] = {}


@dataclass(frozen=True)
class TurnAck:
    """What the sender is told once its message is stored."""

    client_id: str
    message_id: str
    reply_id: str
    duplicate: bool

    def frame(self) -> dict[str, object]:
        return {
            "type": "message.ack",
            "client_id": self.client_id,
            "message_id": self.message_id,
            "reply_id": self.reply_id,
            "duplicate": self.duplicate,
        }


async def turn_submit(
    *,
    conversation: Conversation,
    text: str,
    client_id: uuid.UUID,
    source: str = MessageSource.WEB,
) -> TurnAck:
    """Store the user message (once per client_id) and start its reply in the background.

    Raises:
        ApplicationError: the text is refused, or another reply is still streaming.
    """
    received = time.monotonic()
    started = await database_sync_to_async(services.turn_start)(
        conversation_id=conversation.pk, text=text, client_id=client_id, source=source
    )
    ack = TurnAck(
        client_id=str(client_id),
        message_id=str(started.user_message.public_id),
        reply_id=str(started.reply.public_id),
        duplicate=not started.created,
    )
    if started.created:
        hub = await get_hub()
        conversation_key = str(conversation.public_id)
        hub.publish(
            conversation_key,
            {
                "type": "message.start",
                "message": {
                    "id": ack.message_id,
                    "text": started.user_message.text,
                    "client_id": ack.client_id,
                    "sequence": started.user_message.sequence,
                },
                "reply_id": ack.reply_id,
                "reply_sequence": started.reply.sequence,
            },
        )
        task = asyncio.create_task(
            _run_reply(
                conversation_pk=conversation.pk,
                conversation_key=conversation_key,
                started=started,
                user_text=text,
                received=received,
            ),
            name=f"turn-{ack.reply_id}",
            # A fresh context: the turn outlives whatever started it. Started from an API view
            # (a sync view calling async_to_sync), the request's context would point asgiref at
            # that request's thread, gone by the time the reply is stored.
            context=contextvars.Context(),
        )
        _running.add(task)
        _by_reply[ack.reply_id] = task
        task.add_done_callback(_running.discard)
        task.add_done_callback(lambda _t, key=ack.reply_id: _by_reply.pop(key, None))
    return ack


async def _decide(
    started: services.TurnStarted, conversation_pk: int, user_text: str
) -> tuple[dialogue.Decision, list[services.ChatMessage]]:
    """Classify the message, run the dialogue policy (the LLM labels only if it must), store."""
    assert started.dialogue is not None
    classified = await _classify(user_text)
    decision = dialogue.decide(started.dialogue, started.intents, user_text)
    if decision is None:
        recognition = await recognize(
            user_text,
            list(started.intents.values()),
            classified=classified,
            review_text=started.user_message.text,
        )
        decision = dialogue.decide(started.dialogue, started.intents, user_text, recognition.intent)
        assert decision is not None
        how = services.HowRecognised(recognition.source, recognition.top, recognition.ms)
    else:
        # An answer to the bot's own question: the dialogue placed it; the scores are kept.
        how = services.HowRecognised(
            "dialogue",
            list(classified.top) if classified else [],
            int(classified.elapsed_ms) if classified else None,
        )
    logger.info(
        "message intent",
        extra={
            "message_id": str(started.user_message.public_id),
            "intent": decision.message_intent,
            "source": how.source,
            "confidence": how.scores[0][1] if how.scores else None,
            "nlu_ms": how.ms,
        },
    )
    prompt = await database_sync_to_async(services.dialogue_apply)(
        conversation_id=conversation_pk,
        reply_id=started.reply.pk,
        user_message_id=started.user_message.pk,
        decision=decision,
        history=started.history,
        recognised=how,
    )
    return decision, prompt


async def _classify(text: str) -> ClassifierResult | None:
    """The classifier's top intents for the text; None without a serving model or on failure."""
    try:
        return await classify(text)
    except Exception:
        # The dialogue goes on without the classifier (the LLM labels instead); staff see why.
        logger.exception("intent classifier failed")
        return None


async def _run_reply(
    *,
    conversation_pk: int,
    conversation_key: str,
    started: services.TurnStarted,
    user_text: str,
    received: float,
) -> None:
    hub = await get_hub()
    reply_pk = started.reply.pk
    reply_key = str(started.reply.public_id)
    stream = hub.open_reply(conversation_key, reply_key)
    ttft_ms: int | None = None
    error_code = ""
    is_fallback = False
    status = MessageStatus.COMPLETE
    generating: asyncio.Task[bool] | None = None
    first_token_at: datetime | None = None
    ended = threading.Event()
    decision: dialogue.Decision | None = None
    prompt = started.prompt
    from_state = ConversationState.CALLING_AI
    # Staff's sensitive words, masked inside the model's stream before any socket sees them.
    safety = await _reply_filter(reply_key)
    try:
        if started.dialogue is not None:
            from_state = ConversationState.RECOGNIZING_INTENT
            decision, prompt = await _decide(started, conversation_pk, user_text)
            if decision.reply_text is not None:
                # The policy's own words: no model call, the turn ends from recognizing_intent.
                ttft_ms = _ms_since(received)
                stream.push(decision.reply_text)
                prompt = []
            else:
                from_state = ConversationState.CALLING_AI
        async for piece in stream_chat(prompt) if prompt else _nothing():
            if ttft_ms is None:
                ttft_ms = _ms_since(received)
                first_token_at = timezone.now()
                # Recorded off the token path; awaited before the reply is stored.
                generating = asyncio.create_task(
                    database_sync_to_async(_mark_generating_unless_ended)(
                        conversation_pk, reply_pk, ended
                    )
                )
            if safe := safety.feed(piece):
                stream.push(safe)
        if rest := safety.finish():
            stream.push(rest)
        if decision is not None and decision.must_ask:
            _ask_if_it_did_not(stream, decision)
    except (LlmUnavailable, ApplicationError) as exc:
        error_code = exc.code
    except asyncio.CancelledError:
        error_code = _cancel_reasons.pop(reply_key, "server_shutdown")
        status = MessageStatus.INTERRUPTED
    except Exception:
        logger.exception("reply generation failed", extra={"message_id": reply_key})
        error_code = "internal_error"

    if error_code and status != MessageStatus.INTERRUPTED:
        if stream.tokens:
            status = MessageStatus.INTERRUPTED
        else:
            is_fallback = True
            stream.push(await database_sync_to_async(selectors.fallback_text)(user_text))

    outcome = services.ReplyOutcome(
        text=_storable("".join(stream.tokens), started, decision),
        status=status,
        token_count=len(stream.tokens),
        ttft_ms=ttft_ms,
        total_ms=_ms_since(received),
        error_code=error_code,
        is_fallback=is_fallback,
        moderation=safety.record,
    )
    ended.set()
    try:
        moves: tuple[states.Transition, ...] = ()
        if generating is not None and first_token_at is not None:
            (marked,) = await asyncio.gather(generating, return_exceptions=True)
            if marked is True:
                from_state = ConversationState.GENERATING
                moves = (
                    states.happened(
                        conversation_pk,
                        ConversationState.CALLING_AI,
                        ConversationState.GENERATING,
                        reason="first_token",
                        at=first_token_at,
                    ),
                )
        await database_sync_to_async(services.reply_finish)(
            reply_id=reply_pk,
            conversation_id=conversation_pk,
            outcome=outcome,
            from_state=from_state,
            moves=moves,
        )
    except Exception:
        logger.exception("reply could not be stored", extra={"message_id": reply_key})
    stream.finish(
        {
            "type": "message.done",
            "message_id": reply_key,
            "last_seq": outcome.token_count,
            "status": outcome.status,
            "error_code": outcome.error_code,
            "is_fallback": outcome.is_fallback,
            "ttft_ms": outcome.ttft_ms,
            "total_ms": outcome.total_ms,
            "token_count": outcome.token_count,
        }
    )
    log = logger.warning if error_code else logger.info
    log(
        "turn finished",
        extra={
            "conversation_id": conversation_key,
            "message_id": reply_key,
            "state": services.turn_end_state(error_code),
            "status": outcome.status,
            "error_code": error_code,
            "ttft_ms": ttft_ms,
            "latency_ms": outcome.total_ms,
            "tokens": outcome.token_count,
        },
    )


async def _reply_filter(reply_key: str) -> ReplyFilter:
    """The reply's sensitive-word filter; with none (logged) if the words cannot be had: a reply
    must always end, and the words the process held are kept by the registry anyway."""
    try:
        return ReplyFilter(await acurrent_matcher())
    except Exception:
        logger.exception("sensitive words unavailable", extra={"message_id": reply_key})
        return ReplyFilter(EMPTY)


async def _nothing() -> AsyncIterator[str]:
    return
    yield  # an async generator that yields nothing


def _ask_if_it_did_not(stream: ReplyStream, decision: dialogue.Decision) -> None:
    """The policy needs an answer: if the model's text does not end asking, add the question."""
    text = "".join(stream.tokens).rstrip(" \n\"'”’)）")
    if not text.endswith(("?", "？")):
        stream.push(("\n\n" if text else "") + decision.must_ask)


def _storable(text: str, started: services.TurnStarted, decision: dialogue.Decision | None) -> str:
    """The reply as stored: personal values the model may have repeated are masked."""
    return pii.mask_known(text, _personal_values(started, decision), escape=pii.markdown_escape)


def _personal_values(
    started: services.TurnStarted, decision: dialogue.Decision | None
) -> list[tuple[str, str]]:
    state = started.dialogue
    intent = started.intents.get(state.intent) if state is not None else None
    values: list[tuple[str, str]] = []
    if intent is not None and state is not None:
        for slot in intent.slots.all():
            if slot.is_personal_data and state.filled.get(slot.name):
                values.append((state.filled[slot.name], slot.slot_type))
    if decision is not None:
        values += [(w.value, w.kind) for w in decision.writes if w.personal]
    return values


def _mark_generating_unless_ended(
    conversation_pk: int, reply_pk: int, ended: threading.Event
) -> bool:
    """Record the first token, unless the reply ended before this hop got its turn.

    Under load the database hops queue up behind other turns' starts (bench/ws_stream.py: by
    seconds at 200 simultaneous sends), and by then a fast reply is often over: its finish moves
    the conversation from calling_ai straight to waiting_input (a legal move), and the four
    queries of a state nobody will see are skipped.
    """
    if ended.is_set():
        return False
    return services.conversation_mark_generating(conversation_id=conversation_pk, reply_id=reply_pk)


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def turn_cancel(reply_id: str, *, reason: str) -> bool:
    """Stop a reply this process is writing (e.g. the user spoke over it: reason "barge_in").

    What was generated so far is kept and stored as interrupted with `reason` as its error code,
    and its done frame goes out as for any other end. False if no such turn runs here.
    """
    task = _by_reply.get(reply_id)
    if task is None or task.done():
        return False
    _cancel_reasons[reply_id] = reason
    task.cancel()
    return True


async def wait_for_running_turns(timeout: float = 10.0) -> None:
    """Let every running turn end (tests, graceful shutdown)."""
    if _running:
        await asyncio.wait(set(_running), timeout=timeout)
