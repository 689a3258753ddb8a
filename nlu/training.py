"""Training, promoting and rolling back intent classifiers (the writes of NluModel).

The management command, the Celery task and the admin's buttons all call these. A trained model
never serves until promoted; promoting one demotes the other in the same transaction, and every
process picks the new one up within NLU_MODEL_CHECK_SECONDS (nlu/classifier/serving.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chatsite.exceptions import ApplicationError
from nlu.models import IntentExample, NluModel, NluModelStatus

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


class NluModelNotReady(ApplicationError):
    """Only a model that trained successfully can serve."""

    code = "nlu_model_not_ready"
    status = 409


class NoPreviousModel(ApplicationError):
    """Rolling back needs a model that served before the current one."""

    code = "nlu_no_previous_model"
    status = 409


def training_examples() -> list[tuple[str, str]]:
    """(text, intent name) of every example of every active intent."""
    return list(
        IntentExample.objects.filter(intent__active=True)
        .order_by("pk")
        .values_list("text", "intent__name")
    )


def nlu_model_start(*, user: Any = None) -> NluModel:
    """Record a model about to be trained (the admin shows it as "training" at once)."""
    return NluModel.objects.create(
        status=NluModelStatus.TRAINING, created_by=user if getattr(user, "pk", None) else None
    )


def nlu_model_train_start(*, user: Any = None) -> NluModel:
    """Record a model and train it in the background (a Celery worker; eager without a broker).

    The task is enqueued once the row is committed: a worker must find it. Returns the row as
    it is after scheduling (already trained or failed when Celery runs eagerly).
    """
    from nlu.tasks import train_nlu_model  # nlu.tasks imports the classifier's serving code

    model = nlu_model_start(user=user)
    transaction.on_commit(lambda: train_nlu_model.delay(model.pk))
    model.refresh_from_db(fields=_SUMMARY_FIELDS)
    return model


# Every column but the blobs (artifact, confusion image): what callers of the above read.
_SUMMARY_FIELDS = [
    f.name
    for f in NluModel._meta.concrete_fields
    if f.name not in ("id", "artifact", "confusion_png")
]


def nlu_model_train(
    *, model: NluModel | None = None, user: Any = None, progress: Progress | None = None
) -> NluModel:
    """Train a classifier on the current examples, evaluate it and store it, not serving.

    Raises:
        TrainingDataInvalid: too few intents or examples; the model is stored as failed with
            the reason, and the serving model stays.
    """
    from nlu.classifier.model import RECIPES  # heavy imports (sklearn) only when training
    from nlu.classifier.train import train

    model = model or nlu_model_start(user=user)
    examples = training_examples()
    model.example_count = len(examples)
    model.intent_count = len({intent for _, intent in examples})
    try:
        result = train(examples, progress=progress, recipe=RECIPES[settings.NLU_RECIPE])
    except ApplicationError as exc:
        _failed(model, exc.message)
        raise
    except Exception as exc:
        logger.exception("intent classifier training failed", extra={"nlu_model": model.pk})
        _failed(model, f"Training failed: {type(exc).__name__}: {exc}")
        raise
    model.status = NluModelStatus.READY
    model.recipe = result.recipe
    model.labels = result.labels
    model.artifact = result.onnx_bytes
    model.artifact_sha256 = hashlib.sha256(result.onnx_bytes).hexdigest()
    model.metrics = result.metrics
    model.confusion_png = result.confusion_png
    model.training_seconds = result.seconds
    model.error = ""
    model.save()
    logger.info(
        "intent classifier trained",
        extra={
            "nlu_model": model.pk,
            "accuracy": result.metrics.get("accuracy"),
            "macro_f1": result.metrics.get("macro_f1"),
            "examples": model.example_count,
            "seconds": round(result.seconds, 1),
        },
    )
    return model


def _failed(model: NluModel, reason: str) -> None:
    model.status = NluModelStatus.FAILED
    model.error = reason
    model.save()


def nlu_model_promote(model: NluModel, *, user: Any = None) -> NluModel:
    """Make `model` the serving one (the previous one stops serving in the same transaction).

    Raises:
        NluModelNotReady: it did not train successfully.
    """
    with transaction.atomic():
        model = NluModel.objects.select_for_update().get(pk=model.pk)
        if model.status != NluModelStatus.READY or not model.artifact:
            raise NluModelNotReady(f"{model} is {model.get_status_display().lower()}")
        NluModel.objects.filter(is_serving=True).exclude(pk=model.pk).update(is_serving=False)
        model.is_serving = True
        model.promoted_at = timezone.now()
        model.save(update_fields=["is_serving", "promoted_at"])
        transaction.on_commit(lambda: _announce(model.pk))
    logger.info(
        "intent classifier promoted",
        extra={"nlu_model": model.pk, "user_id": getattr(user, "pk", None)},
    )
    return model


def nlu_model_rollback(*, user: Any = None) -> NluModel:
    """Serve again the model that served before the current one.

    Raises:
        NoPreviousModel: no other ready model has ever served.
    """
    current = NluModel.objects.filter(is_serving=True).first()
    previous = (
        NluModel.objects.filter(status=NluModelStatus.READY, promoted_at__isnull=False)
        .exclude(pk=getattr(current, "pk", None))
        .order_by("-promoted_at")
        .first()
    )
    if previous is None:
        raise NoPreviousModel("No earlier model has served: there is nothing to roll back to")
    return nlu_model_promote(previous, user=user)


def _announce(version: int) -> None:
    from nlu.classifier.serving import serving_version_changed

    serving_version_changed(version)
