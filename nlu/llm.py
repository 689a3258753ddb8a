"""Streaming chat completions from any OpenAI-compatible endpoint.

OpenAI, Doubao (Volcengine Ark), DeepSeek, vLLM, Ollama and llama.cpp all speak this protocol;
only LLM_BASE_URL, LLM_MODEL and LLM_API_KEY change. The SDK's own retries are off: a turn has one
retry policy, the caller's, and a user waiting for a first token is better served by the fallback
reply than by a silent second attempt.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, TypedDict

import openai
from django.conf import settings

from nlu.exceptions import LlmTimeout, LlmUnavailable


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class LlmConfig:
    """Where and how to call the model; defaults come from settings."""

    base_url: str
    model: str
    api_key: str
    first_token_timeout: float
    token_timeout: float
    max_tokens: int
    temperature: float

    @classmethod
    def from_settings(cls) -> LlmConfig:
        """Read the LLM_* settings."""
        return cls(
            base_url=settings.LLM_BASE_URL,
            model=settings.LLM_MODEL,
            api_key=settings.LLM_API_KEY,
            first_token_timeout=settings.LLM_FIRST_TOKEN_TIMEOUT,
            token_timeout=settings.LLM_TOKEN_TIMEOUT,
            max_tokens=settings.LLM_MAX_TOKENS,
            temperature=settings.LLM_TEMPERATURE,
        )


# One client per event loop and endpoint: the HTTP connection pool belongs to the loop it was
# created on, and reusing it keeps connections warm across turns.
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str], openai.AsyncOpenAI]
]
_clients = weakref.WeakKeyDictionary()


def get_client(config: LlmConfig) -> openai.AsyncOpenAI:
    """Return this loop's client for the endpoint, creating it on first use."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = (config.base_url, config.api_key)
    client = per_loop.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            # Socket-level limits; the per-token limits below are tighter and ours.
            timeout=openai.Timeout(60.0, connect=3.0),
        )
        per_loop[key] = client
    return client


async def stream_chat(
    messages: list[ChatMessage], *, config: LlmConfig | None = None
) -> AsyncIterator[str]:
    """Yield the reply's text pieces as the model produces them.

    Raises:
        LlmTimeout: no first token within first_token_timeout, or a gap over token_timeout.
        LlmUnavailable: the endpoint failed or could not be reached.
    """
    config = config or LlmConfig.from_settings()
    client = get_client(config)
    stream = None
    try:
        try:
            async with asyncio.timeout(config.first_token_timeout):
                stream = await client.chat.completions.create(
                    model=config.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    stream=True,
                    max_tokens=config.max_tokens,
                    temperature=config.temperature,
                )
                chunks = aiter(stream)
                first = await _next_text(chunks)
        except TimeoutError as exc:
            raise LlmTimeout("The model sent no first token in time") from exc
        if first is None:
            # A stream that ends with no text is a failure, not an empty answer.
            raise LlmUnavailable("The model ended the stream without any text")
        yield first
        while True:
            try:
                async with asyncio.timeout(config.token_timeout):
                    piece = await _next_text(chunks)
            except TimeoutError as exc:
                raise LlmTimeout("The model stopped sending tokens") from exc
            if piece is None:
                return
            yield piece
    except openai.APIError as exc:
        raise LlmUnavailable(f"The model endpoint failed: {type(exc).__name__}") from exc
    finally:
        if stream is not None:
            await stream.close()


async def _next_text(chunks: AsyncIterator[object]) -> str | None:
    """Advance to the next chunk that carries text; None at the end of the stream."""
    async for chunk in chunks:
        choices = getattr(chunk, "choices", None)
        if not choices:
            continue
        content = choices[0].delta.content
        if content:
            return content
    return None


async def llm_ping(*, timeout: float = 2.0, config: LlmConfig | None = None) -> None:
    """Check that the endpoint answers (lists models).

    Raises:
        LlmUnavailable: it did not answer within the timeout.
    """
    config = config or LlmConfig.from_settings()
    try:
        async with asyncio.timeout(timeout):
            await get_client(config).models.list()
    except (TimeoutError, openai.APIError) as exc:
        raise LlmUnavailable(f"The model endpoint is not ready: {type(exc).__name__}") from exc
