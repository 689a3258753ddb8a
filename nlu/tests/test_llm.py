"""The streaming client against a scripted OpenAI-compatible server (the real wire protocol)."""

from __future__ import annotations

import time

import pytest

from nlu.exceptions import LlmTimeout, LlmUnavailable
from nlu.llm import LlmConfig, llm_ping, stream_chat
from testkit.scripted_llm import Script

PROMPT = [{"role": "user", "content": "hi"}]


async def collect(config: LlmConfig | None = None) -> list[str]:
    return [piece async for piece in stream_chat(PROMPT, config=config)]


async def test_pieces_arrive_in_order(scripted_llm):
    scripted_llm.script = Script(tokens=["你", "好", "，", "world"])
    assert await collect() == ["你", "好", "，", "world"]


async def test_max_tokens_is_always_sent_and_no_hidden_retries(scripted_llm, settings):
    settings.LLM_MAX_TOKENS = 77
    scripted_llm.script = Script(status=500)
    with pytest.raises(LlmUnavailable):
        await collect()
    assert len(scripted_llm.requests) == 1  # the SDK did not retry on its own
    assert scripted_llm.requests[0]["max_tokens"] == 77
    assert scripted_llm.requests[0]["stream"] is True


async def test_no_first_token_in_time_is_a_timeout(scripted_llm, settings):
    settings.LLM_FIRST_TOKEN_TIMEOUT = 0.2
    scripted_llm.script = Script(first_token_delay=2.0)
    started = time.monotonic()
    with pytest.raises(LlmTimeout) as caught:
        await collect()
    assert time.monotonic() - started < 1.0
    assert caught.value.code == "llm_timeout"


async def test_a_gap_between_tokens_is_a_timeout(scripted_llm, settings):
    settings.LLM_TOKEN_TIMEOUT = 0.2
    scripted_llm.script = Script(tokens=["a", "b", "c"], hang_after=2)
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in stream_chat(PROMPT):
            pieces.append(piece)

    with pytest.raises(LlmTimeout):
        await consume()
    assert pieces == ["a", "b"]


async def test_an_unreachable_endpoint_is_unavailable(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    with pytest.raises(LlmUnavailable) as caught:
        await collect()
    assert caught.value.code == "llm_unavailable"


async def test_ping(scripted_llm, settings):
    await llm_ping()
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    with pytest.raises(LlmUnavailable):
        await llm_ping(timeout=1.0)


async def test_a_stream_with_no_text_is_a_failure(scripted_llm):
    scripted_llm.script = Script(tokens=[])
    with pytest.raises(LlmUnavailable):
        await collect()
