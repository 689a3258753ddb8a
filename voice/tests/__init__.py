"""Voice tests. Speech fixtures are made at test time with espeak-ng, never stored."""

from __future__ import annotations

from functools import lru_cache

from voice.audio import SAMPLE_RATE, resample_pcm16
from voice.tts import synthesize

ENGLISH = "I would like to order two classic sets."
CHINESE = "我想订两份经典套餐。"


@lru_cache(maxsize=16)
def speech_16k(text: str, language: str) -> bytes:
    """The sentence spoken by espeak-ng, as 16 kHz mono PCM16 (what the browser sends)."""
    speech = synthesize(text, language=language)
    return resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)


def silence(seconds: float) -> bytes:
    """Digital silence, 16 kHz mono PCM16."""
    return b"\x00\x00" * int(seconds * SAMPLE_RATE)
