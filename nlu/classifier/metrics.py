"""Scores of a classifier's predictions: accuracy, macro-F1, per intent, confusion, calibration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support as prfs

# Under this confidence a message goes to the LLM fallback (nlu/recognize.py), so the
# classifier's worth is how right it is above it, and how much traffic stays above it.
CONFIDENCE_THRESHOLD = 0.7


def calibration(
    confidence: np.ndarray, correct: np.ndarray, threshold: float = CONFIDENCE_THRESHOLD
) -> dict[str, float]:
    """Share of messages at or above `threshold` (coverage) and how often those are right."""
    above = confidence >= threshold
    return {
        "threshold": threshold,
        "coverage": float(above.mean()) if len(above) else 0.0,
        "precision": float(correct[above].mean()) if above.any() else 0.0,
    }


def classification_metrics(
    truth: Sequence[str], predicted: Sequence[str], confidence: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """The metrics dict stored with a model (see train.TrainResult)."""
    truth_a, predicted_a = np.asarray(truth), np.asarray(predicted)
    labels = list(labels)
    precision, recall, f1, support = prfs(truth_a, predicted_a, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth_a, predicted_a)),
        "macro_f1": float(f1_score(truth_a, predicted_a, labels=labels, average="macro")),
        "per_intent": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": {
            "labels": labels,
            "matrix": confusion_matrix(truth_a, predicted_a, labels=labels).tolist(),
        },
        "calibration": calibration(np.asarray(confidence), truth_a == predicted_a),
        "examples": len(truth_a),
    }


def top_confusions(confusion: dict[str, Any], limit: int = 15) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted, count) mistakes, worst first."""
    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None)[:limit]
    pairs = [np.unravel_index(i, off.shape) for i in order]
    return [(labels[t], labels[p], int(off[t, p])) for t, p in pairs if off[t, p] > 0]
