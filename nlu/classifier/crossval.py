"""Stratified cross-validation that yields out-of-fold logits, for metrics and calibration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from nlu.classifier.model import IntentClassifier, Recipe

Progress = Callable[[str, int, int], None]


def fold_count(intents: Sequence[str], wanted: int) -> int:
    """`wanted` folds, fewer if the smallest intent has fewer examples, never under 2.

    With at least as many examples as folds, every fold's model sees every intent.
    """
    return max(2, min(wanted, min(Counter(intents).values())))


def out_of_fold_logits(
    texts: Sequence[str],
    intents: Sequence[str],
    embeddings: np.ndarray | None,
    recipe: Recipe,
    *,
    folds: int,
    labels: Sequence[str],
    progress: Progress | None = None,
) -> list[np.ndarray]:
    """Per member, logits [N, len(labels)] of each example from the model that did not see it.

    A fold's model lacking an intent (only if fold_count was bypassed) leaves -inf there.
    """
    texts_a, intents_a = np.asarray(list(texts), dtype=object), np.asarray(list(intents))
    column = {name: i for i, name in enumerate(labels)}
    members = 2 if recipe.embeddings else 1
    logits = [np.full((len(texts_a), len(labels)), -np.inf) for _ in range(members)]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for done, (fit_idx, held_idx) in enumerate(splitter.split(texts_a, intents_a)):
        if progress:
            progress("cross-validate", done, folds)
        model = IntentClassifier(recipe).fit(
            texts_a[fit_idx].tolist(),
            intents_a[fit_idx].tolist(),
            None if embeddings is None else embeddings[fit_idx],
        )
        held = model.member_logits(
            texts_a[held_idx].tolist(), None if embeddings is None else embeddings[held_idx]
        )
        columns = [column[name] for name in model.labels]
        for target, part in zip(logits, held, strict=True):
            target[np.ix_(held_idx, columns)] = part
    if progress:
        progress("cross-validate", folds, folds)
    return logits
