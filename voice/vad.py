"""Streaming voice activity detection: Silero VAD v6 from the faster-whisper package (MIT).

faster-whisper ships ``assets/silero_vad_v6.onnx``; its ``get_vad_model()`` opens it with one
onnxruntime thread. Its ``__call__`` resets the recurrent state on every call (it is made for
whole files), so the Segmenter runs the session itself and carries the state between frames.
Cost: ~0.1 ms of CPU per 32 ms window, so feed() may run on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from voice.audio import SAMPLE_RATE, pcm16_to_float32

WINDOW = 512  # samples per VAD decision (32 ms at 16 kHz), fixed by the model
CONTEXT = 64  # samples of the previous window the model sees with each window
WINDOW_BYTES = WINDOW * 2
WINDOW_MS = WINDOW * 1000 // SAMPLE_RATE

# Silero's defaults: speech at >= 0.5, silence below 0.35; in between keeps the current state.
THRESHOLD = 0.5
NEG_THRESHOLD = 0.35
# Speech must last this long before SpeechStarted (a click or a cough-like pop does not count).
MIN_SPEECH_MS = 96
# Audio kept from before the start, so the first consonant is not cut off.
PRE_ROLL_MS = 320
# Silence kept at the end of an utterance (Whisper likes a little tail).
TAIL_MS = 200


@dataclass(frozen=True)
class SpeechStarted:
    """The user started speaking."""


@dataclass(frozen=True)
class SpeechEnded:
    """The user stopped speaking; the whole utterance as PCM16 16 kHz mono."""

    utterance: bytes


def _session():  # type: ignore[no-untyped-def]
    from faster_whisper.vad import get_vad_model

    return get_vad_model().session


def warm_up() -> None:
    """Open the VAD model now (~50 ms), not in the first socket's Segmenter()."""
    _session()


class Segmenter:
    """Cuts a stream of 16 kHz mono PCM16 into utterances; one per socket, not thread-safe."""

    def __init__(self, *, silence_ms: int | None = None, max_utterance_s: float = 30.0) -> None:
        if silence_ms is None:
            silence_ms = settings.VOICE_END_SILENCE_MS
        self._session = _session()
        self._end_windows = max(1, -(-silence_ms // WINDOW_MS))
        self._start_windows = max(1, -(-MIN_SPEECH_MS // WINDOW_MS))
        self._max_bytes = int(max_utterance_s * SAMPLE_RATE) * 2
        self._pre_roll_windows = PRE_ROLL_MS // WINDOW_MS
        self._tail_windows = TAIL_MS // WINDOW_MS
        self._state = np.zeros((1, 1, 128), dtype=np.float32)
        self._cell = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = b""
        self._recent: list[bytes] = []  # windows before speech (pre-roll and candidate start)
        self._speech_run = 0
        self._utterance = bytearray()
        self._silent_windows = 0
        self._speaking = False

    @property
    def speaking(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        return self._speaking

    def _probabilities(self, windows: bytes) -> np.ndarray:
        samples = pcm16_to_float32(windows).reshape(-1, WINDOW)
        contexts = np.vstack([self._context, samples[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, samples], axis=1)
        probs, self._state, self._cell = self._session.run(
            None, {"input": batch, "h": self._state, "c": self._cell}
        )
        self._context = samples[-1, -CONTEXT:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)

    def feed(self, pcm: bytes) -> list[SpeechStarted | SpeechEnded]:
        """Add audio of any length (frames need not align with windows); events, in order."""
        data = self._pending + pcm
        usable = len(data) - len(data) % WINDOW_BYTES
        self._pending = data[usable:]
        if not usable:
            return []
        events: list[SpeechStarted | SpeechEnded] = []
        probs = self._probabilities(data[:usable])
        for index, prob in enumerate(probs):
            window = data[index * WINDOW_BYTES : (index + 1) * WINDOW_BYTES]
            if self._speaking:
                self._in_speech(window, float(prob), events)
            else:
                self._in_silence(window, float(prob), events)
        return events

    def _in_silence(self, window: bytes, prob: float, events: list) -> None:  # type: ignore[type-arg]
        self._recent.append(window)
        self._speech_run = self._speech_run + 1 if prob >= THRESHOLD else 0
        if self._speech_run >= self._start_windows:
            keep = self._pre_roll_windows + self._speech_run
            self._utterance = bytearray(b"".join(self._recent[-keep:]))
            self._recent = []
            self._speech_run = 0
            self._silent_windows = 0
            self._speaking = True
            events.append(SpeechStarted())
        else:
            del self._recent[: -(self._pre_roll_windows + self._start_windows)]

    def _in_speech(self, window: bytes, prob: float, events: list) -> None:  # type: ignore[type-arg]
        self._utterance += window
        if prob >= THRESHOLD:
            self._silent_windows = 0
        elif prob < NEG_THRESHOLD or self._silent_windows:
            self._silent_windows += 1
        if self._silent_windows >= self._end_windows:
            events.append(self._end())
        elif len(self._utterance) >= self._max_bytes:
            events.append(self._end())

    def _end(self) -> SpeechEnded:
        extra = max(0, self._silent_windows - self._tail_windows) * WINDOW_BYTES
        utterance = bytes(self._utterance[: len(self._utterance) - extra])
        self._utterance = bytearray()
        self._silent_windows = 0
        self._speaking = False
        self._recent = []
        return SpeechEnded(utterance)

    def flush(self) -> SpeechEnded | None:
        """End the utterance now (the client said "end"): the speech so far, or None."""
        if not self._speaking:
            self._pending = b""
            self._recent = []
            self._speech_run = 0
            return None
        self._utterance += self._pending[: len(self._pending) - len(self._pending) % 2]
        self._pending = b""
        return self._end()

    def ending(self) -> bytes | None:
        """The utterance as it will end if the silence now running lasts, else None.

        Once TAIL_MS of silence has followed speech this is exactly what SpeechEnded will carry
        (the end keeps TAIL_MS of silence and drops the rest), so it can be transcribed while
        the segmenter still waits out VOICE_END_SILENCE_MS: the transcript is ready sooner.
        """
        if not self._speaking or self._silent_windows < self._tail_windows:
            return None
        extra = (self._silent_windows - self._tail_windows) * WINDOW_BYTES
        return bytes(self._utterance[: len(self._utterance) - extra])

    def speech_so_far(self) -> bytes:
        """The utterance in progress (empty when nobody speaks), for a partial transcript."""
        return bytes(self._utterance) if self._speaking else b""

    async def afeed(self, pcm: bytes) -> list[SpeechStarted | SpeechEnded]:
        """feed() for async callers; it is cheap enough to run on the loop directly."""
        return self.feed(pcm)
