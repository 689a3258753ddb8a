from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from voice.audio import (
    SAMPLE_RATE,
    duration_s,
    pcm16_to_float32,
    read_wav,
    resample_pcm16,
    rms,
    wav_bytes,
)
from voice.exceptions import AudioInvalid


def _sine(freq: float, seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.5 * 32767).astype("<i2").tobytes()


def _frequency(pcm: bytes, rate: int) -> float:
    samples = pcm16_to_float32(pcm)
    crossings = np.count_nonzero(np.diff(np.signbit(samples)))
    return crossings / 2 / (samples.size / rate)


def test_pcm16_to_float32_scales_to_unit_range() -> None:
    # given
    pcm = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    # when
    samples = pcm16_to_float32(pcm)
    # then
    assert samples.dtype == np.float32
    assert samples.tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])


def test_odd_byte_count_is_invalid() -> None:
    with pytest.raises(AudioInvalid) as info:
        pcm16_to_float32(b"\x00\x01\x02")
    assert info.value.code == "audio_invalid"


def test_wav_round_trip_keeps_audio_and_rate() -> None:
    # given
    pcm = _sine(440, 0.25, 22050)
    # when
    data = wav_bytes(pcm, 22050)
    # then
    assert data[:4] == b"RIFF"
    assert read_wav(data) == (pcm, 22050)


def test_read_wav_mixes_stereo_down() -> None:
    # given: left 1000, right 3000
    frames = np.tile(np.array([1000, 3000], dtype="<i2"), 100).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frames)
    # when
    pcm, rate = read_wav(buffer.getvalue())
    # then
    assert rate == 8000
    assert np.frombuffer(pcm, dtype="<i2").tolist() == [2000] * 100


@pytest.mark.parametrize("data", [b"", b"not a wav file at all", b"RIFF\x00\x00\x00\x00WAVE"])
def test_read_wav_refuses_garbage(data: bytes) -> None:
    with pytest.raises(AudioInvalid):
        read_wav(data)


def test_read_wav_refuses_8_bit() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 100)
    with pytest.raises(AudioInvalid, match="16-bit"):
        read_wav(buffer.getvalue())


@pytest.mark.parametrize(("from_rate", "to_rate"), [(22050, SAMPLE_RATE), (8000, SAMPLE_RATE)])
def test_resample_keeps_duration_and_pitch(from_rate: int, to_rate: int) -> None:
    # given
    pcm = _sine(440, 1.0, from_rate)
    # when
    out = resample_pcm16(pcm, from_rate, to_rate)
    # then
    assert duration_s(out, to_rate) == pytest.approx(1.0, abs=0.001)
    assert _frequency(out, to_rate) == pytest.approx(440, rel=0.02)
    assert rms(out) == pytest.approx(rms(pcm), rel=0.05)


def test_downsampling_removes_what_the_new_rate_cannot_hold() -> None:
    # given: 10 kHz is above 16 kHz's Nyquist limit and would fold back to 6 kHz
    pcm = _sine(10000, 0.5, 44100)
    # when
    out = resample_pcm16(pcm, 44100, SAMPLE_RATE)
    # then
    assert rms(out) < 0.1 * rms(pcm)


def test_resample_same_rate_and_empty_are_unchanged() -> None:
    assert resample_pcm16(b"\x01\x00\x02\x00", 16000, 16000) == b"\x01\x00\x02\x00"
    assert resample_pcm16(b"", 22050, 16000) == b""
    with pytest.raises(AudioInvalid):
        resample_pcm16(b"\x00\x00", 0, 16000)
