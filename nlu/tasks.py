"""Celery tasks of the language layer: thin wrappers around nlu.predict and the serving model."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from nlu import predict
from nlu.classifier import serving
from nlu.exceptions import TrainingDataInvalid

# A relabelling job sends up to a few thousand texts per task; beyond that, split the job.
MAX_TEXTS_PER_TASK = 5000


@shared_task(name="nlu.warm_up")
def warm_up_nlu_task() -> dict[str, Any]:
    """Load the serving model in this worker process and run one prediction."""
    serving_now = serving.warm_up()
    loaded = serving.current_model()
    return {"serving": serving_now, "model_version": loaded.version if loaded else None}


@shared_task(name="nlu.classify_texts_batch")
def classify_texts_batch_task(texts: list[str]) -> list[dict[str, Any] | None]:
    """Top-3 intents per text (None: no model serves, or an empty text); routed to queue nlu."""
    if len(texts) > MAX_TEXTS_PER_TASK:
        raise ValueError(f"at most {MAX_TEXTS_PER_TASK} texts per task, got {len(texts)}")
    return [r.as_dict() if r else None for r in predict.classify_texts(texts)]


# Training cross-validates and fits on every example: minutes, not the global 60 s limit.
@shared_task(name="nlu.train_model", soft_time_limit=30 * 60, time_limit=31 * 60)
def train_nlu_model(model_id: int) -> None:
    """Train the NluModel started by nlu.training.nlu_model_start (once; a finished one is left)."""
    from nlu import training
    from nlu.models import NluModel, NluModelStatus

    model = NluModel.objects.filter(pk=model_id, status=NluModelStatus.TRAINING).first()
    if model is None:
        return
    try:
        training.nlu_model_train(model=model)
    except TrainingDataInvalid:
        return  # stored as failed with the reason; the serving model stays
