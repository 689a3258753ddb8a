"""How well the few-shot LLM labeller (nlu/fallback.py) labels sentences it has not seen.

The demo domain (nlu/demo/domain.json) is loaded into a throwaway SQLite database; every sentence
of HELD_OUT below (none of them is a demo example) is labelled by the real model through the
product's code, and the same sentences by a baseline prompt in the same run: the intents and
their examples listed in the system message (what the labeller first used). Reported: accuracy of
each, the ratio, and mean seconds per label.

    .venv/bin/python bench/intent_labeller.py                 # starts the packaged Qwen model
    .venv/bin/python bench/intent_labeller.py --base-url http://127.0.0.1:8001/v1   # a running one

Starting the packaged model needs `manage.py prepare_llm` to have run once (scripts/run does).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT: list[tuple[str, str]] = [
    ("嗨，你好呀", "greeting"),
    ("有人吗", "greeting"),
    ("good evening", "greeting"),
    ("hey", "greeting"),
    ("好的，拜拜", "goodbye"),
    ("没别的事了，谢谢", "goodbye"),
    ("ok thanks, goodbye", "goodbye"),
    ("bye bye", "goodbye"),
    ("我想订三份儿童套餐", "order_meal"),
    ("帮我下个单", "order_meal"),
    ("给我来一个双人餐", "order_meal"),
    ("I'd like to place an order", "order_meal"),
    ("two kids sets please", "order_meal"),
    ("can I get food delivered", "order_meal"),
    ("我点的餐到哪里了", "check_order"),
    ("订单怎么还没到", "check_order"),
    ("where's my food", "check_order"),
    ("what is the status of my order", "check_order"),
    ("查询订单", "check_order"),
    ("明天会下雨吗", "out_of_scope"),
    ("你会写代码吗", "out_of_scope"),
    ("how tall is mount everest", "out_of_scope"),
    ("recommend a movie", "out_of_scope"),
    ("北京有什么好玩的", "out_of_scope"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: start Qwen)")
    parser.add_argument("--model", default="local")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="chatsite-labeller-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    os.environ.pop("REDIS_URL", None)  # no shared cache: every label is asked of the model
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    server = None
    base_url = args.base_url
    if base_url is None:
        port = 8091
        base_url = f"http://127.0.0.1:{port}/v1"
        log = (workdir / "llm.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve_llm", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait(base_url, server)
    try:
        asyncio.run(_run(base_url, args.model))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


def _wait(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("the model server exited; run `manage.py prepare_llm` first")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit("the model server did not start in 120 s")


async def _run(base_url: str, model: str) -> None:
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.core.management import call_command

    from nlu import fallback
    from nlu.llm import ChatMessage
    from nlu.selectors import intent_list_for_labelling

    settings.LLM_BASE_URL = base_url
    settings.LLM_MODEL = model
    settings.NLU_LLM_TIMEOUT = 60.0
    settings.NLU_CACHE_SECONDS = 1
    await sync_to_async(call_command)("migrate", verbosity=0)
    await sync_to_async(call_command)("load_demo", stdout=io.StringIO())
    intents = await sync_to_async(intent_list_for_labelling)()

    def catalogue_prompt(text: str, intents: list) -> list[ChatMessage]:  # the baseline
        lines = []
        for intent in intents:
            examples = [e.text for e in intent.examples.all()][: fallback.EXAMPLES_PER_INTENT]
            lines.append(
                f"- {intent.name}: {intent.description}\n  e.g. "
                + " | ".join(f'"{e}"' for e in examples)
            )
        system = fallback.INSTRUCTIONS.format(catalogue="\n".join(lines), none=fallback.NONE_LABEL)
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    product_prompt = fallback.classifier_prompt
    await fallback.classify_with_llm("warm up", intents)  # loads the model's prompt cache
    results = {}
    for name, builder in (("baseline (catalogue)", catalogue_prompt), ("product", product_prompt)):
        fallback.classifier_prompt = builder  # type: ignore[assignment]
        right, started, wrong = 0, time.monotonic(), []
        for text, want in HELD_OUT:
            got = await fallback.classify_with_llm(text, intents)
            right += got == want
            if got != want:
                wrong.append(f"{text!r}: {got} (want {want})")
        seconds = (time.monotonic() - started) / len(HELD_OUT)
        results[name] = right / len(HELD_OUT)
        print(
            f"{name:22} accuracy {right}/{len(HELD_OUT)} = {right / len(HELD_OUT):.2f}, "
            f"{seconds:.2f} s per label"
        )
        for line in wrong:
            print(f"    {line}")
    fallback.classifier_prompt = product_prompt
    base, product = results["baseline (catalogue)"], results["product"]
    print(f"accuracy ratio product/baseline: {product / base:.2f}" if base else "")


if __name__ == "__main__":
    main()
