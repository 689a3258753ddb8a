"""Train an intent classifier from (text, intent) examples: validate, cross-validate, fit, export.

nlu/training.py calls `train` for the admin, the Celery task and `manage.py train_nlu`; the
recipe and its measured alternatives are in docs/nlu.md.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlu.classifier.artifact import embed
from nlu.classifier.crossval import fold_count, out_of_fold_logits
from nlu.classifier.export import max_disagreement, to_onnx
from nlu.classifier.metrics import classification_metrics
from nlu.classifier.model import (
    DEFAULT_RECIPE,
    IntentClassifier,
    Recipe,
)
from nlu.classifier.normalize import normalize
from nlu.classifier.report import confusion_png
from nlu.exceptions import TrainingDataInvalid

Progress = Callable[[str, int, int], None]

# The graph is checked against scikit-learn on this many training texts; float32 vs float64
# differ by ~1e-6, a real mismatch (a tokeniser difference) by far more than the tolerance.
CHECK_SAMPLE = 64
CHECK_TOLERANCE = 1e-3
EMBED_BATCH = 64


@dataclass
class TrainResult:
    """A trained artifact with its evaluation."""

    onnx_bytes: bytes
    labels: list[str]
    recipe: str
    metrics: dict[str, Any]
    confusion_png: bytes
    seconds: float


def train(
    examples: Sequence[tuple[str, str]],
    *,
    folds: int = 5,
    evaluate: bool = True,
    progress: Progress | None = None,
    recipe: Recipe = DEFAULT_RECIPE,
) -> TrainResult:
    """Cross-validate (if `evaluate`), fit on everything, export to ONNX and check the graph.

    Without `evaluate` there are no metrics and no calibration (the recipe's raw weights).

    Raises:
        TrainingDataInvalid: fewer than two intents, or an intent with fewer than two examples.
    """
    started = time.perf_counter()
    validate(examples)
    texts = [normalize(text) for text, _ in examples]
    intents = [intent for _, intent in examples]
    labels = sorted(set(intents))
    embeddings = embed_all(texts, progress) if recipe.embeddings else None

    metrics: dict[str, Any] = {}
    png = b""
    model = IntentClassifier(recipe)
    if evaluate:
        k = fold_count(intents, folds)
        members = out_of_fold_logits(
            texts, intents, embeddings, recipe, folds=k, labels=labels, progress=progress
        )
        truth = np.array([labels.index(i) for i in intents])
        model.calibrate(members, truth, labels)
        probabilities = model.probabilities(members)
        predicted = [labels[i] for i in probabilities.argmax(axis=1)]
        metrics = classification_metrics(intents, predicted, probabilities.max(axis=1), labels)
        metrics.update(
            folds=k,
            scales=model.scales,
            text_scale=model.text_scale,
            cascade_gate=model.cascade_gate,
            encoder_share=model.encoder_share(members),
        )
        png = confusion_png(labels, metrics["confusion"]["matrix"])

    step(progress, "fit", 0, 2)
    model.fit(texts, intents, embeddings)
    step(progress, "fit", 1, 2)
    onnx_bytes = to_onnx(model)
    sample = np.random.default_rng(0).permutation(len(texts))[:CHECK_SAMPLE]
    disagreement = max_disagreement(
        model,
        onnx_bytes,
        [texts[i] for i in sample],
        None if embeddings is None else embeddings[sample],
    )
    if disagreement > CHECK_TOLERANCE:
        raise RuntimeError(f"the ONNX graph disagrees with scikit-learn by {disagreement:.2g}")
    step(progress, "fit", 2, 2)
    metrics.update(examples=len(texts), onnx_max_abs_diff=disagreement)
    return TrainResult(
        onnx_bytes=onnx_bytes,
        labels=model.labels,
        recipe=recipe.name,
        metrics=metrics,
        confusion_png=png,
        seconds=time.perf_counter() - started,
    )


def validate(examples: Sequence[tuple[str, str]]) -> None:
    """Raise TrainingDataInvalid unless there are two intents with two examples each or more."""
    counts = Counter(intent for _, intent in examples)
    if len(counts) < 2:
        names = ", ".join(counts) or "none"
        raise TrainingDataInvalid(
            f"Training needs at least two intents with examples; found {len(counts)} ({names}).",
            extra={"intents": sorted(counts)},
        )
    lonely = sorted(name for name, count in counts.items() if count < 2)
    if lonely:
        raise TrainingDataInvalid(
            "Every intent needs at least two examples; these have one: " + ", ".join(lonely) + ".",
            extra={"intents": lonely},
        )


def embed_all(
    texts: Sequence[str], progress: Progress | None = None, stage: str = "embed"
) -> np.ndarray:
    """e5 embeddings of normalised texts, in batches so that progress can be shown."""
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        step(progress, stage, start, len(texts))
        parts.append(embed(texts[start : start + EMBED_BATCH]))
    step(progress, stage, len(texts), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)


def step(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Report progress if anyone listens."""
    if progress is not None:
        progress(stage, done, total)
