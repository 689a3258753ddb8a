"""PCM16 helpers: conversion, resampling and WAV in/out, numpy only."""

from __future__ import annotations

import io
import wave

import numpy as np

from voice.exceptions import AudioInvalid

# What the browser sends and what Whisper and Silero VAD expect: mono PCM16 little-endian.
SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2


def _samples(pcm: bytes) -> np.ndarray:
    """The PCM16 bytes as an int16 array (a view, no copy).

    Raises:
        AudioInvalid: an odd number of bytes.
    """
    if len(pcm) % BYTES_PER_SAMPLE:
        raise AudioInvalid("PCM16 audio must have an even number of bytes.")
    return np.frombuffer(pcm, dtype="<i2")


def pcm16_to_float32(pcm: bytes) -> np.ndarray:
    """Mono PCM16 to float32 samples in [-1, 1).

    Raises:
        AudioInvalid: an odd number of bytes.
    """
    return _samples(pcm).astype(np.float32) / 32768.0


def float32_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] to PCM16 bytes, clipped."""
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


def duration_s(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of mono PCM16 audio."""
    return len(pcm) / BYTES_PER_SAMPLE / sample_rate


def rms(pcm: bytes) -> float:
    """Root mean square of mono PCM16 audio, 0..1 (0 for no audio)."""
    samples = pcm16_to_float32(pcm)
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


def _lowpass(samples: np.ndarray, cutoff: float) -> np.ndarray:
    """Windowed-sinc FIR low-pass; cutoff as a fraction of the sample rate (< 0.5)."""
    taps = 63
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    kernel /= kernel.sum()
    return np.convolve(samples, kernel, mode="same")


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample mono PCM16 (linear interpolation, low-passed first when downsampling).

    Good enough for speech going to ASR or a browser; not for music.

    Raises:
        AudioInvalid: an odd number of bytes or a rate that is not positive.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise AudioInvalid("Sample rates must be positive.")
    samples = pcm16_to_float32(pcm)
    if from_rate == to_rate or samples.size == 0:
        return bytes(pcm)
    if to_rate < from_rate:
        # Remove what the new rate cannot represent, so it does not fold back as noise.
        samples = _lowpass(samples, 0.45 * to_rate / from_rate).astype(np.float32)
    count = max(1, round(samples.size * to_rate / from_rate))
    positions = np.arange(count) * (from_rate / to_rate)
    out = np.interp(positions, np.arange(samples.size), samples)
    return float32_to_pcm16(out)


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """A mono PCM16 WAV file holding this audio."""
    _samples(pcm)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(BYTES_PER_SAMPLE)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple[bytes, int]:
    """The PCM16 mono audio and sample rate of a WAV file (stereo is mixed down).

    Raises:
        AudioInvalid: not a WAV file, or not 16-bit PCM, or more than two channels.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, ValueError) as exc:
        raise AudioInvalid(f"Not a readable WAV file: {exc}") from exc
    if width != BYTES_PER_SAMPLE:
        raise AudioInvalid(f"WAV must be 16-bit PCM, got {8 * width}-bit.")
    if channels not in (1, 2) or rate <= 0:
        raise AudioInvalid(f"WAV must be mono or stereo, got {channels} channels.")
    frames = frames[: len(frames) - len(frames) % (BYTES_PER_SAMPLE * channels)]
    if channels == 2:
        stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, 2).astype(np.int32)
        frames = (stereo.sum(axis=1) // 2).astype("<i2").tobytes()
    return frames, rate
