"""Online intent classification: micro-batched ONNX against one-at-a-time ONNX and scikit-learn.

N concurrent callers (asyncio tasks in this one process; N = 1, 8, 32, 128) each classify texts
in a loop for a fixed time. Scenarios, all in one run on the same model:

* `onnx-single`: normalise, then one `IntentModel.predict([text])` per request in the process's
  inference thread (what the online path would be without the batcher);
* `online`: `nlu.predict.classify` end to end (serving model, prediction cache, micro-batcher),
  every text made unique so the cache never answers;
* `sklearn-single`: normalise, then the same pipeline's `predict_proba([text])` in scikit-learn,
  one request at a time in the same single thread;
* `online-repeat`: `classify` over a small pool of texts, so the cache answers most requests.

The model is the product's own recipe (`--recipe`: `hybrid`, the default of NLU_RECIPE, or
`tfidf`), fitted here without cross-validation: on Banking77's training set when `--datasets` (or
CHATSITE_DATASETS) points at the shared data sets, else on the demo domain's examples. The
scikit-learn side is the same fitted classifier (`IntentClassifier.predict_proba`, embedding the
text first when the recipe uses embeddings, as the ONNX path does).
The serving model comes from a throwaway SQLite database in bench/results/,
the cache is the local-memory one (no REDIS_URL), so the figures are the classifier's own.

    .venv/bin/python bench/nlu.py
    CHATSITE_DATASETS=../shared/datasets .venv/bin/python bench/nlu.py --seconds 5

Results: docs/nlu-serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
RESULTS.mkdir(parents=True, exist_ok=True)
# Always a database of its own: the bench promotes a model, which must not touch a real one.
os.environ["DATABASE_URL"] = f"sqlite:///{RESULTS / 'nlu-bench.sqlite3'}"
os.environ.pop("REDIS_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django  # noqa: E402
import numpy as np  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from nlu.classifier import cache as prediction_cache  # noqa: E402
from nlu.classifier import serving  # noqa: E402
from nlu.classifier.artifact import IntentModel, embed  # noqa: E402
from nlu.classifier.batching import get_batcher  # noqa: E402
from nlu.classifier.crossval import out_of_fold_logits  # noqa: E402
from nlu.classifier.export import to_onnx  # noqa: E402
from nlu.classifier.model import RECIPES, IntentClassifier  # noqa: E402
from nlu.classifier.normalize import normalize  # noqa: E402
from nlu.models import NluModel, NluModelStatus  # noqa: E402
from nlu.predict import classify  # noqa: E402

CONCURRENCY = (1, 8, 32, 128)
SCENARIOS = ("onnx-single", "online", "sklearn-single", "online-repeat")
REPEAT_POOL = 50


def load_examples(datasets: str) -> tuple[dict[str, list[str]], list[tuple[str, str]], str]:
    """Training examples per intent, held-out (text, intent) pairs, and the data's name."""
    if datasets:
        base = Path(datasets) / "banking77"
        train: dict[str, list[str]] = {}
        for line in (base / "train.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            train.setdefault(row["intent"], []).append(row["text"])
        test = [
            (row["text"], row["intent"])
            for row in map(json.loads, (base / "test.jsonl").read_text().splitlines())
        ]
        return train, test, "Banking77 train (10,003 texts, 77 intents)"
    domain = json.loads((ROOT / "nlu" / "demo" / "domain.json").read_text(encoding="utf-8"))
    train = {intent["name"]: list(intent["examples"]) for intent in domain["intents"]}
    pairs = [(text, intent) for intent, texts in train.items() for text in texts]
    count = sum(len(t) for t in train.values())
    return train, pairs, f"the demo domain's examples ({count} texts, {len(train)} intents)"


def cached_embeddings(texts: list[str]) -> np.ndarray:
    """The e5 embeddings of the training texts, kept in bench/results between runs (~95 s of
    the encoder for Banking77's 10,003 texts on 2 cores)."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = RESULTS / f"e5-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.concatenate([embed(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    np.save(path, vectors)
    return vectors


def promote(onnx_bytes: bytes, labels: list[str]) -> None:
    call_command("migrate", verbosity=0)
    NluModel.objects.update(is_serving=False)
    row = NluModel.objects.create(
        status=NluModelStatus.READY,
        is_serving=True,
        recipe="tfidf-char/logreg",
        labels=labels,
        artifact=onnx_bytes,
        artifact_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
    )
    serving.serving_version_changed(row.pk)
    assert serving.warm_up()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run_phase(
    call: Callable[[str], Awaitable[object]], texts: list[str], callers: int, seconds: float
) -> dict[str, float]:
    """`callers` tasks calling `call` in a loop for `seconds`; latencies and throughput."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await call(texts[i % len(texts)])
            latencies.append((time.perf_counter() - started) * 1000)
            i += callers

    started = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 99),
    }


async def bench(args: argparse.Namespace) -> dict[str, object]:
    train, held_out, data_name = load_examples(args.datasets)
    fit_started = time.perf_counter()
    recipe = RECIPES[args.recipe]
    texts = [normalize(t) for ts in train.values() for t in ts]
    intents = [intent for intent, ts in train.items() for _ in ts]
    embeddings = cached_embeddings(texts) if recipe.embeddings else None
    classifier = IntentClassifier(recipe)
    # Calibrated as train_nlu does (3-fold out-of-fold logits): the cascade's gate acts on
    # calibrated confidences, so an uncalibrated model would embed a different share of texts.
    labels = sorted(set(intents))
    members = out_of_fold_logits(texts, intents, embeddings, recipe, folds=3, labels=labels)
    classifier.calibrate(members, np.array([labels.index(i) for i in intents]), labels)
    classifier.fit(texts, intents, embeddings)
    onnx_bytes, labels = to_onnx(classifier), classifier.labels
    fit_seconds = time.perf_counter() - fit_started

    def sklearn_proba(batch: list[str]) -> object:
        return classifier.predict_proba_encoding(batch, embed)

    await asyncio.to_thread(promote, onnx_bytes, labels)
    model = IntentModel(onnx_bytes, labels)

    # The graph must be the same model: top-1 agreement with scikit-learn on held-out texts.
    sample = [normalize(t) for t, _ in held_out[:1000]]
    onnx_top = [p.intent for p in model.predict(sample)]
    sk_top = [labels[i] for i in sklearn_proba(sample).argmax(axis=1)]
    agreement = sum(a == b for a, b in zip(onnx_top, sk_top, strict=True)) / len(sample)
    accuracy = sum(a == gold for a, (_, gold) in zip(onnx_top, held_out[:1000], strict=True)) / len(
        sample
    )

    base = [t for t, _ in held_out] or [t for ts in train.values() for t in ts]
    one_thread = ThreadPoolExecutor(max_workers=1)  # one inference at a time, as online
    loop = asyncio.get_running_loop()
    counter = iter(range(10**9))

    def unique(text: str) -> str:
        return f"{text} #{next(counter)}"  # distinct texts: the cache never answers

    async def onnx_single(text: str) -> object:
        # The online path with the batcher replaced by one inference per request.
        normalized = normalize(unique(text))
        loaded = await serving.aserving_model()
        assert loaded is not None
        key = prediction_cache.prediction_key(loaded.version, loaded.sha256, normalized)
        if await prediction_cache.aget_prediction(key) is None:
            (prediction,) = await loop.run_in_executor(one_thread, model.predict, [normalized])
            await prediction_cache.aset_prediction(key, prediction)
        return key

    gold = dict(held_out)
    served = {"right": 0, "total": 0}  # the online path's answers against the gold labels

    async def online(text: str) -> object:
        result = await classify(unique(text))
        assert result is not None
        assert result.source == "model"
        if text in gold:
            served["total"] += 1
            served["right"] += result.intent == gold[text]
        return result

    async def sklearn_single(text: str) -> object:
        return await loop.run_in_executor(one_thread, sklearn_proba, [normalize(unique(text))])

    async def online_repeat(text: str) -> object:
        return await classify(text)

    calls = {
        "onnx-single": (onnx_single, base),
        "online": (online, base),
        "sklearn-single": (sklearn_single, base),
        "online-repeat": (online_repeat, base[:REPEAT_POOL]),
    }
    await run_phase(online, base, 8, 0.5)  # warm every path once
    await run_phase(sklearn_single, base, 1, 0.3)
    rows: list[dict[str, object]] = []
    for callers in args.n:
        for scenario in SCENARIOS:
            if scenario not in args.scenarios:
                continue
            call, texts = calls[scenario]
            batcher = get_batcher()
            first, encoder = batcher.first.stats, batcher.encoder.stats
            before = (first.batches, first.texts, encoder.batches, encoder.texts)
            over_budget = batcher.over_budget
            served.update(right=0, total=0)
            figures = await run_phase(call, texts, callers, args.seconds)
            batches, batched = first.batches - before[0], first.texts - before[1]
            mean_batch = batched / batches if batches else 0.0
            encoded = encoder.texts - before[3]
            row = {
                "scenario": scenario,
                "callers": callers,
                **figures,
                "mean_batch": mean_batch,
                "encoder_share": encoded / batched if batched else 0.0,
                "mean_encoder_batch": encoded / max(1, encoder.batches - before[2]),
                "over_budget_share": (batcher.over_budget - over_budget) / batched
                if batched
                else 0,
            }
            if scenario == "online" and served["total"]:
                row["served_accuracy"] = served["right"] / served["total"]
            rows.append(row)
            print(
                f"{scenario:>15} n={callers:<4} {figures['rps']:8.0f} req/s  "
                f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
                f"batch {mean_batch:5.1f}  encoded {row['encoder_share']:.0%} "
                f"(batch {row['mean_encoder_batch']:.1f}), "
                f"over budget {row['over_budget_share']:.0%}"
                + (f", accuracy {row['served_accuracy']:.2%}" if "served_accuracy" in row else ""),
                flush=True,
            )
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "data": data_name,
        "recipe": args.recipe,
        "labels": len(labels),
        "fit_seconds": round(fit_seconds, 1),
        "onnx_bytes": len(onnx_bytes),
        "onnx_sklearn_top1_agreement": agreement,
        "held_out_accuracy": accuracy,
        "batch_max": settings.NLU_BATCH_MAX,
        "batch_wait_ms": settings.NLU_BATCH_WAIT_MS,
        "encoder_budget_ms": settings.NLU_ENCODER_BUDGET_MS,
        "seconds_per_phase": args.seconds,
        "rows": rows,
    }


def report(result: dict[str, object]) -> bool:
    rows = {(r["scenario"], r["callers"]): r for r in result["rows"]}  # type: ignore[index, attr-defined]
    ns = sorted({n for _, n in rows})
    agreement = result["onnx_sklearn_top1_agreement"]
    print(
        f"\n{result['data']}, recipe {result['recipe']}; ONNX/sklearn top-1 agreement "
        f"{agreement:.3f}"
    )
    print(
        "| callers | online/onnx-single req/s | onnx/sklearn req/s | online p50 / p99 ms "
        "| encoded · over budget | online accuracy |"
    )
    ok = True
    for n in ns:
        single, online, sk = (rows.get((s, n)) for s in ("onnx-single", "online", "sklearn-single"))
        if not (single and online and sk):
            continue
        batched_ratio = online["rps"] / single["rps"]
        onnx_ratio = single["rps"] / sk["rps"]
        print(
            f"| {n} | {batched_ratio:.2f}x | {onnx_ratio:.2f}x | "
            f"{online['p50_ms']:.2f} / {online['p99_ms']:.2f} | "
            f"{online['encoder_share']:.0%} · {online['over_budget_share']:.0%} | "
            f"{online.get('served_accuracy', 0):.2%} |"
        )
        ok &= batched_ratio >= 1.0
        if n == 32:
            target = online["p99_ms"] < 20
            print(f"target: 32 callers, online p99 < 20 ms: {'PASS' if target else 'MISS'}")
            ok &= target
    print(f"target: batched throughput >= one-at-a-time at every level: {'PASS' if ok else 'MISS'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=os.environ.get("CHATSITE_DATASETS", ""))
    parser.add_argument("--n", type=lambda s: [int(x) for x in s.split(",")], default=CONCURRENCY)
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="hybrid")
    parser.add_argument(
        "--scenarios", type=lambda s: s.split(","), default=list(SCENARIOS), help="comma-separated"
    )
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    ok = report(result)
    out = RESULTS / f"nlu-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
