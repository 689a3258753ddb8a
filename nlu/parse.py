"""Read a text the way the chat reads a message: its intent, then the intent's slot values.

The same path as a conversation turn: the serving classifier, the LLM labeller when the
classifier is unsure or absent (nlu/recognize.py), then the rule-based entity finders for the
slots of the intent found (nlu/entities/). Nothing is stored, not even a review item: the review
queue holds what users said in conversations, not what an integrator tries out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from nlu import entities
from nlu.exceptions import EmptyText, TextTooLong
from nlu.models import Intent
from nlu.predict import ClassifierResult, classify
from nlu.recognize import recognize
from nlu.selectors import intent_list_active

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedEntity:
    """A slot value found in the text; text[start:end] is what the user typed for it."""

    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class ParseResult:
    """What nlu_parse read in a text."""

    text: str
    intent: str | None
    # The classifier's confidence in `intent`; None when only the LLM named it.
    confidence: float | None
    ranking: list[tuple[str, float]]  # the classifier's top intents, best first
    entities: list[ParsedEntity]
    source: str  # model, cache, llm or none (nlu.recognize.Recognition.source)
    model_version: int | None  # the classifier (NluModel pk) that ranked it


def message_text_check(text: object) -> str:
    """A user's text, checked: the one rule for chat, voice, the API and parse (same codes).

    Returns the text as given (parse's offsets count from it); callers that store it strip it.

    Raises:
        EmptyText: not a string, or nothing but whitespace (empty_message).
        TextTooLong: over CHAT_MAX_MESSAGE_CHARS characters, counted as sent, which is what the
            API schema's maxLength counts (message_too_long).
    """
    if not isinstance(text, str) or not text.strip():
        raise EmptyText("The message is empty")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise TextTooLong(
            f"The message is over {settings.CHAT_MAX_MESSAGE_CHARS} characters",
            extra={"limit": settings.CHAT_MAX_MESSAGE_CHARS},
        )
    return text


async def nlu_parse(*, text: str) -> ParseResult:
    """The intent of `text` (classifier, else LLM) and the values of that intent's slots.

    Offsets refer to `text` as given (leading spaces included).

    Raises:
        EmptyText, TextTooLong: as message_text_check.
    """
    text = message_text_check(text)
    classified = await _classify(text)
    intents = await sync_to_async(_active_intents)()
    recognition = await recognize(text, intents, classified=classified)
    intent = next((i for i in intents if i.name == recognition.intent), None)
    found = (
        entities.extract(text, [entities.SlotSpec.from_definition(s) for s in intent.slots.all()])
        if intent is not None
        else {}
    )
    return ParseResult(
        text=text,
        intent=recognition.intent,
        confidence=dict(recognition.top).get(recognition.intent or ""),
        ranking=list(recognition.top),
        entities=sorted(
            (ParsedEntity(e.slot, e.value, e.start, e.end) for e in found.values()),
            key=lambda e: (e.start, e.end),
        ),
        source=recognition.source,
        model_version=classified.model_version if classified is not None else None,
    )


def _active_intents() -> list[Intent]:
    return list(intent_list_active())


async def _classify(text: str) -> ClassifierResult | None:
    """The classifier's answer; None without a serving model or when it fails."""
    try:
        return await classify(text)
    except Exception:
        # As in a turn: the LLM labels instead, and staff see why in the log.
        logger.exception("intent classifier failed")
        return None
