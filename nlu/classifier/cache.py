"""Recent predictions, per model: the same normalised text is classified once a minute at most.

Key: `nlu:pred:v<model pk>-<artifact sha256[:12]>:<sha256 of the normalised text>`, kept
NLU_PREDICTION_CACHE_SECONDS. A promotion changes the model part of the key, so nothing needs
deleting; the artifact hash keeps a reused pk (a restored or recreated database) from answering
with another model's labels. The cache is an optimisation: when it fails, callers classify.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache

from nlu.classifier.artifact import Prediction

logger = logging.getLogger(__name__)


def prediction_key(model_version: int, model_sha256: str, normalized: str) -> str:
    """The cache key of one normalised text's prediction by one model."""
    digest = hashlib.sha256(normalized.encode("utf-8")).hexdigest()
    return f"nlu:pred:v{model_version}-{model_sha256[:12]}:{digest}"


def _encode(prediction: Prediction) -> list[list[Any]]:
    return [[intent, round(confidence, 6)] for intent, confidence in prediction.top]


def _decode(raw: object) -> Prediction | None:
    if not isinstance(raw, list) or not raw:
        return None
    try:
        return Prediction([(str(intent), float(confidence)) for intent, confidence in raw])
    except (TypeError, ValueError):
        return None


def get_prediction(key: str) -> Prediction | None:
    """The cached prediction, or None (missing, unreadable, or the cache is down)."""
    try:
        return _decode(cache.get(key))
    except Exception:  # an optimisation failing must not fail the classification
        logger.warning("nlu prediction cache unreadable", exc_info=True)
        return None


def set_prediction(key: str, prediction: Prediction) -> None:
    """Store a prediction for NLU_PREDICTION_CACHE_SECONDS (errors are logged, not raised)."""
    try:
        cache.set(key, _encode(prediction), settings.NLU_PREDICTION_CACHE_SECONDS)
    except Exception:
        logger.warning("nlu prediction not cached", exc_info=True)


# Django's own cache.aget runs in the one thread shared with every ORM hop (thread_sensitive),
# where a Redis round trip would queue behind database work; these use the executor instead.
# The local-memory cache does no I/O, so it is called inline.
_aget = sync_to_async(get_prediction, thread_sensitive=False)
_aset = sync_to_async(set_prediction, thread_sensitive=False)


async def aget_prediction(key: str) -> Prediction | None:
    """`get_prediction` for the event loop."""
    if _is_locmem():
        return get_prediction(key)
    return await _aget(key)


async def aset_prediction(key: str, prediction: Prediction) -> None:
    """`set_prediction` for the event loop."""
    if _is_locmem():
        set_prediction(key, prediction)
        return
    await _aset(key, prediction)


def _is_locmem() -> bool:
    return isinstance(caches["default"], LocMemCache)
