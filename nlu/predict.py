"""The intent classifier as the rest of the product calls it: online (async) and in bulk (sync).

Online: normalise → the serving model (no I/O between checks) → the prediction cache → the
micro-batcher (the first stage, then the encoder within NLU_ENCODER_BUDGET_MS) → the cache again
(not for an answer given over budget). Bulk (Celery, relabelling): batches of NLU_BATCH_MAX straight
through `IntentModel.predict`, no cache. Both answer None when there is no model opinion: no
model serves, or the text normalises to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from nlu.classifier import cache as prediction_cache
from nlu.classifier.artifact import Prediction
from nlu.classifier.batching import Stage, get_batcher
from nlu.classifier.normalize import normalize
from nlu.classifier.serving import aserving_model, serving_model

Source = Literal["cache", "model"]


@dataclass(frozen=True)
class ClassifierResult(Prediction):
    """The classifier's top intents for one text, best first, and where the answer came from."""

    model_version: int
    source: Source
    elapsed_ms: float
    # Which part of the model answered (batching.Stage); "" from the cache or the bulk path.
    stage: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Small JSON for tasks and logs."""
        return {
            "intent": self.intent,
            "confidence": self.confidence,
            "top": [[intent, confidence] for intent, confidence in self.top],
            "model_version": self.model_version,
            "source": self.source,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "stage": self.stage,
        }


async def classify(text: str) -> ClassifierResult | None:
    """Top-3 intents of a user's text from the serving model; None without a model opinion."""
    started = time.perf_counter()
    normalized = _normal_form(text)
    if not normalized:
        return None
    loaded = await aserving_model()
    if loaded is None:
        return None
    key = prediction_cache.prediction_key(loaded.version, loaded.sha256, normalized)
    cached = await prediction_cache.aget_prediction(key)
    if cached is not None:
        return ClassifierResult(cached.top, loaded.version, "cache", _ms(started))
    prediction, stage = await get_batcher().predict_staged(normalized, loaded.model)
    if stage != Stage.OVER_BUDGET:  # a repeat may find the encoder less busy
        await prediction_cache.aset_prediction(key, prediction)
    return ClassifierResult(prediction.top, loaded.version, "model", _ms(started), stage)


def classify_texts(texts: Sequence[str]) -> list[ClassifierResult | None]:
    """Top-3 intents for many texts, in batches of NLU_BATCH_MAX (blocking; workers, commands)."""
    results: list[ClassifierResult | None] = [None] * len(texts)
    loaded = serving_model()
    if loaded is None:
        return results
    wanted = [(i, normalized) for i, text in enumerate(texts) if (normalized := _normal_form(text))]
    size = max(settings.NLU_BATCH_MAX, 1)
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        started = time.perf_counter()
        predictions = loaded.model.predict([normalized for _, normalized in chunk])
        elapsed = _ms(started)
        for (i, _), prediction in zip(chunk, predictions, strict=True):
            results[i] = ClassifierResult(prediction.top, loaded.version, "model", elapsed)
    return results


def _normal_form(text: object) -> str:
    """normalize(), and "" for a non-text; lone surrogates (valid in JSON, not in UTF-8, so
    neither onnxruntime nor the cache key could take them) become "?"."""
    if not isinstance(text, str):
        return ""
    normalized = normalize(text)
    try:
        normalized.encode("utf-8")
    except UnicodeEncodeError:
        normalized = normalized.encode("utf-8", "replace").decode("utf-8")
    return normalized


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
