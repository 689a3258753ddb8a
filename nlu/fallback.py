"""Intent recognition by a few-shot LLM prompt.

Until the ONNX classifier of issue 4 serves intents, the LLM labels every message that the
dialogue cannot place by itself (an answer to the question just asked needs no classifier); once
the classifier is there, it decides only the messages the classifier is unsure about. Labels are
cached by the prompt they came from, so a change to the intents or their examples starts afresh.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from nlu.exceptions import LlmUnavailable
from nlu.llm import ChatMessage, LlmConfig, stream_chat
from nlu.models import Intent

logger = logging.getLogger(__name__)

# Enough to show each intent's range without making every classification slow on a CPU model.
EXAMPLES_PER_INTENT = 4
NONE_LABEL = "none"

INSTRUCTIONS = (
    "You label a customer's message with the one intent it expresses. The intents:\n\n"
    "{catalogue}\n\n"
    "Answer with the intent's name only, exactly as written above, or {none} if no intent fits."
)


def classifier_prompt(text: str, intents: Sequence[Intent]) -> list[ChatMessage]:
    """The few-shot prompt: the intents described, then worked examples as turns, then the text.

    Examples go in as user/assistant turns, taken round-robin across intents: on the local
    0.5B model this labelled more held-out sentences right than a catalogue of examples in the
    system message (bench/intent_labeller.py). `intents` must have their examples prefetched.
    """
    lines = [
        f"- {intent.name}: {intent.description or intent.display_name or intent.name}"
        for intent in intents
    ]
    system = INSTRUCTIONS.format(catalogue="\n".join(lines), none=NONE_LABEL)
    prompt: list[ChatMessage] = [{"role": "system", "content": system}]
    examples = {i.name: [e.text for e in i.examples.all()][:EXAMPLES_PER_INTENT] for i in intents}
    for round_ in range(EXAMPLES_PER_INTENT):
        for name, texts in examples.items():
            if round_ < len(texts):
                prompt.append({"role": "user", "content": texts[round_]})
                prompt.append({"role": "assistant", "content": name})
    prompt.append({"role": "user", "content": text})
    return prompt


def parse_label(answer: str, names: Sequence[str]) -> str | None:
    """The intent named in the model's answer; None for "none" or anything unrecognisable.

    Small models decorate their answers ("Intent: order_meal.", '{"intent": "greeting"}'), so
    the first known name anywhere in the answer counts; the longest name wins a tie at one spot.
    """
    lowered = answer.lower()
    best: tuple[int, int, str] | None = None
    for name in names:
        match = re.search(rf"(?<![a-z0-9_]){re.escape(name)}(?![a-z0-9_])", lowered)
        if match and (best is None or (match.start(), -len(name)) < best[:2]):
            best = (match.start(), -len(name), name)
    return best[2] if best else None


def _cache_key(prompt: list[ChatMessage], config: LlmConfig) -> str:
    # Another model (or endpoint) may label differently: it gets its own entries.
    digest = hashlib.sha256(f"{config.base_url}\x00{config.model}\x00".encode())
    for message in prompt:
        digest.update(unicodedata.normalize("NFKC", message["content"]).casefold().encode())
        digest.update(b"\x00")
    return f"nlu:llm-intent:{digest.hexdigest()}"


async def classify_with_llm(
    text: str, intents: Sequence[Intent], *, config: LlmConfig | None = None
) -> str | None:
    """The intent the LLM reads in `text`, or None (no intent fits, or the model failed).

    Never raises for a model failure: the dialogue carries on without an intent, and the reply
    itself will meet the same model and fall back if it is down.
    """
    if not intents:
        return None
    prompt = classifier_prompt(text.strip(), intents)
    config = replace(
        config or LlmConfig.from_settings(),
        max_tokens=settings.NLU_LLM_MAX_TOKENS,
        temperature=0.0,
        first_token_timeout=settings.NLU_LLM_TIMEOUT,
    )
    key = _cache_key(prompt, config)
    version = settings.NLU_CACHE_VERSION
    cached = await sync_to_async(cache.get)(key, version=version)
    if cached is not None:
        return cached or None
    pieces: list[str] = []
    try:
        async for piece in stream_chat(prompt, config=config):
            pieces.append(piece)
    except LlmUnavailable as exc:
        logger.warning("intent classification failed", extra={"error_code": exc.code})
        return None
    label = parse_label("".join(pieces), [i.name for i in intents])
    await sync_to_async(cache.set)(key, label or "", settings.NLU_CACHE_SECONDS, version=version)
    logger.info("intent classified", extra={"intent": label or NONE_LABEL, "source": "llm"})
    return label
