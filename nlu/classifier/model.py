"""The intent model as trained: TF-IDF + logistic regression, optionally with a second logistic
regression on e5 embeddings, combined as a weighted product of experts.

Logits of the members add up (a geometric mean of their probabilities), which measured better
than one regression over the concatenated features and than averaging probabilities
(docs/nlu.md), and keeps the ONNX head a few MatMuls. The member scales come from
out-of-fold predictions: each member's temperature, the recipe's weights, one final temperature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from nlu.classifier.features import text_features
from nlu.classifier.metrics import CONFIDENCE_THRESHOLD

# How often a prediction at or above the serving threshold must be right; the final temperature
# is raised, never lowered, until out-of-fold predictions are.
TARGET_PRECISION = 0.97


@dataclass(frozen=True)
class Recipe:
    """What to train: the knobs measured in docs/nlu.md."""

    embeddings: bool = True
    C: float = 30.0
    embedding_C: float = 100.0
    # The e5 member's share of the log-probabilities (0.3 / 0.5 / 0.7 measured on Banking77
    # out-of-fold; 0.5 best).
    embedding_weight: float = 0.5
    max_iter: int = 3000

    @property
    def name(self) -> str:
        text = f"tfidf-char1-4+word1-2/logreg-C{self.C:g}"
        if not self.embeddings:
            return text
        return f"{text} × e5small/logreg-C{self.embedding_C:g} (w{self.embedding_weight:g})"


TFIDF = Recipe(embeddings=False)
HYBRID = Recipe()
# Chosen by measurement (docs/nlu.md).
DEFAULT_RECIPE = HYBRID
RECIPES = {"tfidf": TFIDF, "hybrid": HYBRID}


@dataclass
class IntentClassifier:
    """Fit on normalised texts (and their embeddings when the recipe uses them)."""

    recipe: Recipe
    union: FeatureUnion | None = None
    members: list[LogisticRegression] = field(default_factory=list)
    # Multiplies each member's logits; calibrate() sets them, the default is uncalibrated.
    scales: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def fit(
        self, texts: Sequence[str], intents: Sequence[str], embeddings: np.ndarray | None = None
    ) -> IntentClassifier:
        """Fit the vectorisers and the members; the scales stay as they are (or the weights)."""
        self.union = text_features(len(texts))
        tfidf = self.union.fit_transform(list(texts))
        text_member = LogisticRegression(C=self.recipe.C, max_iter=self.recipe.max_iter)
        self.members = [text_member.fit(tfidf, list(intents))]
        if self.recipe.embeddings:
            embedding_member = LogisticRegression(
                C=self.recipe.embedding_C, max_iter=self.recipe.max_iter
            )
            self.members.append(embedding_member.fit(_required(embeddings), list(intents)))
        self.labels = [str(c) for c in text_member.classes_]
        if not self.scales:
            self.scales = self.weights()
        return self

    def weights(self) -> list[float]:
        """The recipe's share of each member."""
        if not self.recipe.embeddings:
            return [1.0]
        return [1 - self.recipe.embedding_weight, self.recipe.embedding_weight]

    def member_logits(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Each member's decision values [N, len(labels)], unscaled."""
        if self.union is None or not self.members:
            raise RuntimeError("fit the classifier first")
        inputs = [self.union.transform(list(texts))]
        if self.recipe.embeddings:
            inputs.append(np.asarray(_required(embeddings), dtype=np.float32))
        pairs = zip(self.members, inputs, strict=True)
        return [two_columns(member.decision_function(x)) for member, x in pairs]

    def logits(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The combined, calibrated logits [N, len(labels)]."""
        return combine(self.scales, self.member_logits(texts, embeddings))

    def predict_proba(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated probabilities [N, len(labels)], columns in `labels` order."""
        return softmax(self.logits(texts, embeddings))


def two_columns(logits: np.ndarray) -> np.ndarray:
    """Decision values as [N, L]; with two intents scikit-learn gives only the second one's
    margin z, and [-z/2, z/2] has the same softmax (export.py builds the graph the same way)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        return np.stack([-logits / 2, logits / 2], axis=1)
    return logits


def calibrate(
    members: Sequence[np.ndarray], truth: np.ndarray, weights: Sequence[float]
) -> list[float]:
    """Member scales from out-of-fold logits: weight / member temperature / final temperature.

    The final temperature minimises the negative log-likelihood, raised if need be until
    predictions at or above CONFIDENCE_THRESHOLD are right TARGET_PRECISION of the time.
    """
    scaled = [w / fit_temperature(z, truth) for w, z in zip(weights, members, strict=True)]
    combined = combine(scaled, members)
    temperature = fit_temperature(combined, truth)
    correct = combined.argmax(axis=1) == truth
    for candidate in temperature * np.geomspace(1, 3, 41):
        confident = softmax(combined / candidate).max(axis=1) >= CONFIDENCE_THRESHOLD
        if not confident.any() or correct[confident].mean() >= TARGET_PRECISION:
            temperature = float(candidate)
            break
    return [s / temperature for s in scaled]


def combine(scales: Sequence[float], members: Sequence[np.ndarray]) -> np.ndarray:
    """The weighted sum of the members' logits."""
    total = np.zeros_like(members[0], dtype=np.float64)
    for scale, logits in zip(scales, members, strict=True):
        total = total + scale * logits
    return total


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of held-out (out-of-fold) logits.

    `truth` holds column indices. Bounded to [0.05, 20]: beyond that the folds were too small to
    say anything.
    """
    finite = np.where(np.isfinite(logits), logits, -1e9)

    def nll(log_t: float) -> float:
        scaled = finite / np.exp(log_t)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(scaled).sum(axis=1))
        return float(np.mean(log_z - scaled[np.arange(len(truth)), truth]))

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))


def _required(embeddings: np.ndarray | None) -> np.ndarray:
    if embeddings is None:
        raise ValueError("this recipe needs the texts' embeddings")
    return embeddings
