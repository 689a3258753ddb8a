"""Score a recipe on a public train/test split (`manage.py evaluate_nlu`, bench/nlu_quality.py).

Everything tuned here (the temperature, the out-of-scope rejection threshold) comes from
cross-validation on the train split; the test split is only scored.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.classifier.artifact import EMBEDDING_DIM, EMBEDDING_INPUT, TEXT_INPUT, IntentModel
from nlu.classifier.crossval import fold_count, out_of_fold_logits
from nlu.classifier.export import max_disagreement, to_onnx
from nlu.classifier.metrics import classification_metrics
from nlu.classifier.model import (
    DEFAULT_RECIPE,
    IntentClassifier,
    Recipe,
)
from nlu.classifier.normalize import normalize
from nlu.classifier.train import embed_all, step, validate

Progress = Callable[[str, int, int], None]
Examples = Sequence[tuple[str, str]]

AUTO = "auto"
OOS_LABELS = ("oos", "out_of_scope")
# Out-of-scope recall aimed at on out-of-fold predictions: the target (0.8) plus a margin, as
# ~100 out-of-scope training examples estimate it to about ±4 points.
OOS_RECALL = 0.85
THRESHOLDS = np.round(np.arange(0.0, 0.96, 0.01), 2)
LATENCY_SAMPLE = 256
BATCH = 32


def load_examples(path: str | Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from JSON Lines ({"text", "intent"}) or CSV (text,intent header)."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            return [(row["text"], row["intent"]) for row in csv.DictReader(handle)]
        rows = (json.loads(line) for line in handle if line.strip())
        return [(row["text"], row["intent"]) for row in rows]


def evaluate_split(
    train_examples: Examples,
    test_examples: Examples,
    *,
    oos_label: str | None = AUTO,
    recipe: Recipe = DEFAULT_RECIPE,
    folds: int = 3,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on one split, score the other: metrics, out-of-scope scores, timings.

    `oos_label` AUTO picks "oos" or "out_of_scope" if the train split has it; its examples are
    learnt as an intent, and a prediction whose confidence is under `oos_threshold` becomes
    out-of-scope too (see rejection_threshold; tuned on out-of-fold train predictions).
    `folds` < 2 skips the cross-validation: no calibration and no rejection threshold.
    """
    validate(train_examples)
    train_texts = [normalize(t) for t, _ in train_examples]
    train_intents = [i for _, i in train_examples]
    test_texts = [normalize(t) for t, _ in test_examples]
    test_intents = [i for _, i in test_examples]
    labels = sorted(set(train_intents))
    if oos_label == AUTO:
        oos_label = next((name for name in OOS_LABELS if name in labels), None)
    timings: dict[str, float] = {}

    train_embeddings = test_embeddings = None
    if recipe.embeddings:
        started = time.perf_counter()
        train_embeddings = embed_all(train_texts, progress, "embed train")
        test_embeddings = embed_all(test_texts, progress, "embed test")
        timings["embed_ms_per_text"] = (
            1000 * (time.perf_counter() - started) / max(1, len(train_texts) + len(test_texts))
        )

    model, threshold = IntentClassifier(recipe), 0.0
    result_extra: dict[str, float] = {}
    started = time.perf_counter()
    if folds >= 2:
        k = fold_count(train_intents, folds)
        members = out_of_fold_logits(
            train_texts,
            train_intents,
            train_embeddings,
            recipe,
            folds=k,
            labels=labels,
            progress=progress,
        )
        truth = np.array([labels.index(i) for i in train_intents])
        model.calibrate(members, truth, labels)
        result_extra["encoder_share_oof"] = model.encoder_share(members)
        result_extra["cascade_gate"] = model.cascade_gate
        if oos_label is not None:
            threshold = rejection_threshold(
                model.probabilities(members), truth, labels.index(oos_label)
            )
    timings["cross_validation_seconds"] = time.perf_counter() - started

    step(progress, "fit", 0, 1)
    started = time.perf_counter()
    model.fit(train_texts, train_intents, train_embeddings)
    timings["fit_seconds"] = time.perf_counter() - started
    step(progress, "fit", 1, 1)

    probabilities = model.predict_proba(test_texts, test_embeddings)
    predicted = reject(probabilities, model.labels, oos_label, threshold)
    result = classification_metrics(
        test_intents, predicted, probabilities.max(axis=1), sorted(set(labels) | set(test_intents))
    )
    result.update(
        result_extra,
        recipe=recipe.name,
        scales=model.scales,
        text_scale=model.text_scale,
        train_examples=len(train_texts),
    )
    if len(model.members) > 1:
        result["encoder_share"] = model.encoder_share(
            model.member_logits(test_texts, test_embeddings)
        )
    if oos_label is not None:
        result.update(oos_scores(test_intents, predicted, oos_label), oos_threshold=threshold)

    onnx_bytes = to_onnx(model)
    sample = np.random.default_rng(0).permutation(len(test_texts))[:LATENCY_SAMPLE]
    sample_texts = [test_texts[i] for i in sample]
    result["onnx_max_abs_diff"] = max_disagreement(
        model,
        onnx_bytes,
        sample_texts[:BATCH],
        None if test_embeddings is None else test_embeddings[sample[:BATCH]],
    )
    timings.update(graph_latency(IntentModel(onnx_bytes, model.labels), sample_texts))
    timings["onnx_bytes"] = len(onnx_bytes)
    result["timings"] = timings
    return result


def rejection_threshold(
    probabilities: np.ndarray, truth: np.ndarray, oos: int, recall: float = OOS_RECALL
) -> float:
    """The lowest confidence threshold at which out-of-fold predictions (best intent `oos`, or
    confidence under the threshold) find `recall` of the out-of-scope examples; the lowest
    costs in-scope accuracy least. The highest-recall threshold if none gets there."""
    best = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    out = truth == oos
    if not out.any():
        return 0.0
    recalls = []
    for threshold in THRESHOLDS:
        said_oos = (confidence < threshold) | (best == oos)
        if said_oos[out].mean() >= recall:
            return float(threshold)
        recalls.append(said_oos[out].mean())
    return float(THRESHOLDS[int(np.argmax(recalls))])


def reject(
    probabilities: np.ndarray, labels: Sequence[str], oos_label: str | None, threshold: float
) -> list[str]:
    """Best intents, or `oos_label` where the confidence is under `threshold`."""
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    if oos_label is None:
        return predicted
    confidence = probabilities.max(axis=1)
    return [oos_label if c < threshold else p for p, c in zip(predicted, confidence, strict=True)]


def oos_scores(truth: Sequence[str], predicted: Sequence[str], oos_label: str) -> dict[str, float]:
    """Out-of-scope recall and precision, and the accuracy on in-scope messages."""
    truth_a, predicted_a = np.asarray(truth), np.asarray(predicted)
    oos, said = truth_a == oos_label, predicted_a == oos_label
    return {
        "oos_recall": float(said[oos].mean()) if oos.any() else 0.0,
        "oos_precision": float(oos[said].mean()) if said.any() else 0.0,
        "in_scope_accuracy": float((truth_a == predicted_a)[~oos].mean()) if (~oos).any() else 0.0,
    }


def graph_latency(model: IntentModel, texts: Sequence[str]) -> dict[str, float]:
    """Milliseconds per text one at a time, and per batch of 32, of the ONNX graph alone (the
    e5 embedding, when the graph takes one, is timed as embed_ms_per_text)."""
    embedding = np.zeros((BATCH, EMBEDDING_DIM), dtype=np.float32)

    def run(batch: Sequence[str]) -> None:
        inputs: dict[str, np.ndarray] = {}
        if TEXT_INPUT in model.inputs:
            inputs[TEXT_INPUT] = np.asarray(list(batch), dtype=object).reshape(-1, 1)
        if EMBEDDING_INPUT in model.inputs:
            inputs[EMBEDDING_INPUT] = embedding[: len(batch)]
        model.session.run(None, inputs)

    run(texts[:1])  # warm-up
    started = time.perf_counter()
    for text in texts:
        run([text])
    single = 1000 * (time.perf_counter() - started) / max(1, len(texts))
    batches = [texts[i : i + BATCH] for i in range(0, len(texts) - BATCH + 1, BATCH)] or [texts]
    started = time.perf_counter()
    for batch in batches:
        run(batch)
    return {
        "graph_ms_per_text": single,
        "graph_ms_per_batch32": 1000 * (time.perf_counter() - started) / len(batches),
    }
