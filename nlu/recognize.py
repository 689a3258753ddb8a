"""Which intent a message expresses: the classifier, and the LLM when the classifier is unsure.

The ONNX classifier answers in milliseconds (nlu/predict.py). When its top confidence is under
NLU_CONFIDENCE_THRESHOLD, or no classifier serves yet, the few-shot LLM prompt decides
(nlu/fallback.py), shown the examples closest to the message; an answer that names no known
intent leaves the classifier's top intent standing. Every unsure message goes to the review queue
with the LLM's label as a suggestion, so staff can turn it into training data in one click.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from nlu.fallback import NONE_LABEL, classify_with_llm
from nlu.models import Intent
from nlu.selectors import intent_list_for_labelling

logger = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Recognition:
    """The intent to act on, and how it was found."""

    intent: str | None  # None: no intent fits (the model may answer freely)
    source: str  # model, cache, llm, or none
    top: list[tuple[str, float]] = field(default_factory=list)  # the classifier's top 3
    ms: int = 0

    @property
    def confidence(self) -> float | None:
        return self.top[0][1] if self.top else None


async def recognize(
    text: str,
    intents: Sequence[Intent],
    *,
    classified: Any = None,
    review_text: str | None = None,
) -> Recognition:
    """The intent of `text` among the active `intents`.

    `classified` is the classifier's result for the text (nlu.predict.classify), None when no
    classifier serves. `review_text` is the message as stored (personal data masked): what the
    review queue may keep.
    """
    started = time.monotonic()
    names = {intent.name for intent in intents}
    top: list[tuple[str, float]] = list(classified.top) if classified is not None else []
    if top and top[0][1] >= settings.NLU_CONFIDENCE_THRESHOLD and top[0][0] in names:
        return Recognition(top[0][0], classified.source, top, _ms(started, classified))

    # The examples are read only here, when the LLM is asked: not on every turn.
    labelling = await sync_to_async(intent_list_for_labelling)()
    label = await classify_with_llm(text, labelling, candidates=[name for name, _ in top])
    if label == NONE_LABEL:
        # "None of these" is what the out-of-scope intent is for, where staff defined one.
        recognition = Recognition(
            OUT_OF_SCOPE if OUT_OF_SCOPE in names else None, "llm", top, _ms(started, classified)
        )
    elif label is not None:
        recognition = Recognition(label, "llm", top, _ms(started, classified))
    elif top and top[0][0] in names:
        # The LLM gave no usable answer (or failed): the classifier's best guess stands.
        recognition = Recognition(top[0][0], classified.source, top, _ms(started, classified))
    else:
        recognition = Recognition(None, "none", top, _ms(started, classified))
    if classified is not None and review_text:
        suggestion = recognition.intent if recognition.source == "llm" else ""
        await sync_to_async(_review)(review_text, top, classified, suggestion or "")
    logger.info(
        "intent recognised",
        extra={
            "intent": recognition.intent or "",
            "source": recognition.source,
            "confidence": recognition.confidence,
            "llm_label": label or "",
            "nlu_ms": recognition.ms,
        },
    )
    return recognition


def _review(text: str, top: list[tuple[str, float]], classified: Any, label: str | None) -> None:
    from nlu.review import review_record

    review_record(
        text=text,
        top=top,
        model_version_id=getattr(classified, "model_version", None),
        suggested_intent=label or "",
    )


def _ms(started: float, classified: Any) -> int:
    before = getattr(classified, "elapsed_ms", 0) or 0
    return int(before + (time.monotonic() - started) * 1000)
