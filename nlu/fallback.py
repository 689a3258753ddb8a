"""Intent recognition by a few-shot LLM prompt: the fallback when the classifier is unsure.

nlu/recognize.py asks it when the ONNX classifier's confidence is under the threshold (or no
classifier serves yet). Labels are cached by the prompt they came from, so a change to the
intents or their examples starts afresh.
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
# At most this many examples in one prompt (a small model's context is 4,096 tokens).
MAX_SHOTS = 24
NONE_LABEL = "none"

INSTRUCTIONS = (
    "You label a customer's message with the one intent it expresses. The intents:\n\n"
    "{catalogue}\n\n"
    "Answer with the intent's name only, exactly as written above, or {none} if no intent fits."
)


def classifier_prompt(
    text: str, intents: Sequence[Intent], *, candidates: Sequence[str] = ()
) -> list[ChatMessage]:
    """The few-shot prompt: the intents described, then worked examples as turns, then the text.

    Examples go in as user/assistant turns: on the local 0.5B model this labelled more held-out
    sentences right than a catalogue of examples in the system message
    (bench/intent_labeller.py). `intents` must have their examples prefetched; `candidates` are
    the classifier's best guesses, whose examples are always shown.
    """
    lines = [
        f"- {intent.name}: {intent.description or intent.display_name or intent.name}"
        for intent in intents
    ]
    system = INSTRUCTIONS.format(catalogue="\n".join(lines), none=NONE_LABEL)
    prompt: list[ChatMessage] = [{"role": "system", "content": system}]
    for example, name in few_shots(text, intents, candidates=candidates):
        prompt.append({"role": "user", "content": example})
        prompt.append({"role": "assistant", "content": name})
    prompt.append({"role": "user", "content": text})
    return prompt


def few_shots(
    text: str, intents: Sequence[Intent], *, candidates: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """The (example, intent) pairs to show: all of a small domain, the closest of a large one.

    A small domain (up to MAX_SHOTS examples shown) gets EXAMPLES_PER_INTENT of each intent,
    round-robin. A large one (Banking77 has 77 intents) would overflow a small model's context,
    so it gets the MAX_SHOTS examples closest to the text (character bigram overlap), two of
    each candidate intent among them, the closest last, next to the text.
    """
    per_intent = {i.name: [e.text for e in i.examples.all()] for i in intents}
    if sum(min(len(v), EXAMPLES_PER_INTENT) for v in per_intent.values()) <= MAX_SHOTS:
        shots = []
        for round_ in range(EXAMPLES_PER_INTENT):
            for name, texts in per_intent.items():
                if round_ < len(texts):
                    shots.append((texts[round_], name))
        return shots
    target = _bigrams(text)
    scored = sorted(
        (
            (_overlap(target, _bigrams(example)), example, name)
            for name, texts in per_intent.items()
            for example in texts
        ),
        reverse=True,
    )
    chosen: list[tuple[float, str, str]] = []
    for name in candidates:
        chosen += [row for row in scored if row[2] == name][:2]
    for row in scored:
        if len(chosen) >= MAX_SHOTS:
            break
        if row not in chosen:
            chosen.append(row)
    return [(example, name) for _, example, name in sorted(chosen)]


def _bigrams(text: str) -> set[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


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
    text: str,
    intents: Sequence[Intent],
    *,
    candidates: Sequence[str] = (),
    config: LlmConfig | None = None,
) -> str | None:
    """The intent the LLM reads in `text`; NONE_LABEL when it says none fits; None when it
    failed or answered nothing recognisable.

    Never raises for a model failure: the dialogue carries on without an intent, and the reply
    itself will meet the same model and fall back if it is down.
    """
    if not intents:
        return None
    prompt = classifier_prompt(text.strip(), intents, candidates=candidates)
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
    # "none" is an answer too (no intent fits); anything unrecognisable is no answer at all.
    label = parse_label("".join(pieces), [*(i.name for i in intents), NONE_LABEL])
    await sync_to_async(cache.set)(key, label or "", settings.NLU_CACHE_SECONDS, version=version)
    logger.info("intent classified", extra={"intent": label or "?", "source": "llm"})
    return label
