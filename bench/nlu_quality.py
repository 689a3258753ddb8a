"""Intent-classifier quality and cost on the public data sets, for every candidate recipe.

    .venv/bin/python bench/nlu_quality.py                      # all sets, served recipes (~25 min)
    .venv/bin/python bench/nlu_quality.py --sets smp2017-ecdt --recipes tfidf
    .venv/bin/python bench/nlu_quality.py --extra              # + e5-only, averaged, MLP (sklearn)

Reads the sets from $CHATSITE_DATASETS (or --datasets) in place. e5 embeddings are cached per
split in --cache (they are ~70 % of the run on 2 cores); the numbers go to stdout as a Markdown
table and to --json. Method and results: docs/nlu.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlu.classifier import artifact, train  # noqa: E402
from nlu.classifier.evaluate import evaluate_split, load_examples  # noqa: E402
from nlu.classifier.metrics import calibration  # noqa: E402
from nlu.classifier.model import HYBRID, TFIDF, Recipe  # noqa: E402
from nlu.classifier.normalize import normalize  # noqa: E402

SETS = {
    "banking77": ("train", "test"),
    "clinc150": ("train", "val"),
    "smp2017-ecdt": ("train", "val"),
}
RECIPES: dict[str, Recipe] = {"tfidf": TFIDF, "hybrid": HYBRID}


class CachedEmbedder:
    """artifact.embed with a per-split .npy cache; unknown texts go to the real encoder."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.known: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.computed = 0

    def load(self, cache: Path, name: str, texts: list[str]) -> None:
        path = cache / f"{name}.npy"
        if path.exists():
            vectors = np.load(path)
        else:
            started = time.perf_counter()
            vectors = np.concatenate(
                [self.real(texts[i : i + 64]) for i in range(0, len(texts), 64)]
            )
            self.seconds += time.perf_counter() - started
            self.computed += len(texts)
            np.save(path, vectors)
        self.known.update(zip(texts, vectors, strict=True))

    def __call__(self, texts: Any) -> np.ndarray:
        missing = [t for t in texts if t not in self.known]
        if missing:
            self.known.update(zip(missing, self.real(missing), strict=True))
        if not texts:
            return np.zeros((0, artifact.EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self.known[t] for t in texts]).astype(np.float32)


def encoder_ms_per_text(real: Any, texts: list[str]) -> dict[str, float]:
    """The e5 encoder's own cost: one text at a time and per batch of 32."""
    real(texts[:2])
    started = time.perf_counter()
    for text in texts[:64]:
        real([text])
    single = 1000 * (time.perf_counter() - started) / 64
    started = time.perf_counter()
    real(texts[64:96])
    return {
        "embed_ms_per_text": single,
        "embed_ms_per_batch32": 1000 * (time.perf_counter() - started),
    }


def extra_candidates(
    train_ex: list[tuple[str, str]], test_ex: list[tuple[str, str]], embedder: CachedEmbedder
) -> dict[str, dict[str, float]]:
    """Candidates not served (scikit-learn only, no temperature): e5 + logistic regression,
    the average of the TF-IDF and e5 models' probabilities, and an MLP on e5 (the stand-in for
    a small torch network)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neural_network import MLPClassifier

    from nlu.classifier.model import IntentClassifier

    x_train = [normalize(t) for t, _ in train_ex]
    y_train = [i for _, i in train_ex]
    x_test = [normalize(t) for t, _ in test_ex]
    y_test = np.array([i for _, i in test_ex])
    e_train, e_test = embedder(x_train), embedder(x_test)
    results: dict[str, dict[str, float]] = {}

    def score(name: str, probabilities: np.ndarray, classes: np.ndarray, seconds: float) -> None:
        predicted = classes[probabilities.argmax(axis=1)]
        cal = calibration(probabilities.max(axis=1), predicted == y_test)
        results[name] = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "macro_f1": float(f1_score(y_test, predicted, average="macro")),
            "coverage": cal["coverage"],
            "precision": cal["precision"],
            "train_seconds": seconds,
        }

    started = time.perf_counter()
    e5 = LogisticRegression(C=100, max_iter=3000).fit(e_train, y_train)
    e5_seconds = time.perf_counter() - started
    score("e5/logreg-C100", e5.predict_proba(e_test), e5.classes_, e5_seconds)
    started = time.perf_counter()
    text = IntentClassifier(TFIDF).fit(x_train, y_train)
    both = (text.predict_proba(x_test) + e5.predict_proba(e_test)) / 2
    score("avg(tfidf, e5)", both, e5.classes_, e5_seconds + time.perf_counter() - started)
    started = time.perf_counter()
    mlp = MLPClassifier(hidden_layer_sizes=(512,), early_stopping=True, random_state=0)
    mlp.fit(e_train * 4, y_train)
    score("e5/mlp-512", mlp.predict_proba(e_test * 4), mlp.classes_, time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=os.environ.get("CHATSITE_DATASETS"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--extra", action="store_true")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "chatsite-e5"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not args.datasets:
        parser.error("set CHATSITE_DATASETS or pass --datasets")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    real = artifact.embed
    embedder = CachedEmbedder(real)
    # Both the trainer and the served-model check embed through these names.
    train.embed = embedder  # type: ignore[assignment]
    artifact.embed = embedder  # type: ignore[assignment]

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "runs": []}
    for name in args.sets.split(","):
        train_split, test_split = SETS[name]
        folder = Path(args.datasets) / name
        train_ex = load_examples(folder / f"{train_split}.jsonl")
        test_ex = load_examples(folder / f"{test_split}.jsonl")
        for split, examples in ((train_split, train_ex), (test_split, test_ex)):
            embedder.load(cache, f"{name}-{split}", [normalize(t) for t, _ in examples])
        for recipe_name in args.recipes.split(","):
            started = time.perf_counter()
            run = evaluate_split(train_ex, test_ex, recipe=RECIPES[recipe_name], folds=args.folds)
            run.update(set=name, candidate=recipe_name, seconds=time.perf_counter() - started)
            for bulky in ("per_intent", "confusion"):
                run.pop(bulky)
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        if args.extra:
            for candidate, run in extra_candidates(train_ex, test_ex, embedder).items():
                run.update(set=name, candidate=candidate)
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
    results["encoder"] = encoder_ms_per_text(real, [normalize(t) for t, _ in test_ex][:96])
    print(json.dumps(results["encoder"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
