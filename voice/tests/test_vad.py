from __future__ import annotations

import numpy as np
import pytest

from voice.audio import SAMPLE_RATE, duration_s
from voice.tests import CHINESE, ENGLISH, silence, speech_16k
from voice.vad import Segmenter, SpeechEnded, SpeechStarted

FRAME = 640  # 20 ms, what the browser sends


def _feed(segmenter: Segmenter, pcm: bytes, frame: int = FRAME) -> list[object]:
    events: list[object] = []
    for start in range(0, len(pcm), frame):
        events.extend(segmenter.feed(pcm[start : start + frame]))
    return events


def _noise(seconds: float, level: float = 0.003) -> bytes:
    rng = np.random.default_rng(7)
    samples = rng.normal(0, level, int(seconds * SAMPLE_RATE))
    return (samples * 32767).astype("<i2").tobytes()


@pytest.mark.parametrize(("text", "language"), [(ENGLISH, "en"), (CHINESE, "zh")])
def test_speech_then_silence_is_one_utterance(text: str, language: str) -> None:
    # given
    speech = speech_16k(text, language)
    segmenter = Segmenter(silence_ms=600)
    # when
    events = _feed(segmenter, silence(0.5) + speech + silence(1.0))
    # then
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    utterance = events[1].utterance  # type: ignore[attr-defined]
    assert duration_s(utterance) == pytest.approx(duration_s(speech), abs=0.6)
    assert not segmenter.speaking
    assert segmenter.speech_so_far() == b""


@pytest.mark.parametrize("frame", [320, 333, 1280, 16000])
def test_any_frame_length_gives_the_same_utterance(frame: int) -> None:
    # given
    stream = silence(0.3) + speech_16k(ENGLISH, "en") + silence(1.0)
    # when
    events = _feed(Segmenter(silence_ms=600), stream, frame)
    expected = _feed(Segmenter(silence_ms=600), stream, FRAME)
    # then
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert events == expected


@pytest.mark.parametrize("audio", [silence(3.0), _noise(3.0)], ids=["digital", "noise"])
def test_no_speech_gives_no_events(audio: bytes) -> None:
    # given
    segmenter = Segmenter()
    # when
    events = _feed(segmenter, audio)
    # then
    assert events == []
    assert segmenter.flush() is None


def test_silence_shorter_than_the_limit_does_not_end_the_utterance() -> None:
    # given: two sentences with a 0.3 s pause
    speech = speech_16k(ENGLISH, "en")
    segmenter = Segmenter(silence_ms=800)
    # when
    events = _feed(segmenter, speech + silence(0.3) + speech + silence(1.2))
    # then
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert duration_s(events[1].utterance) > 2 * duration_s(speech)  # type: ignore[attr-defined]


def test_two_utterances_apart_give_two_pairs() -> None:
    speech = speech_16k(CHINESE, "zh")
    events = _feed(Segmenter(silence_ms=500), speech + silence(1.0) + speech + silence(1.0))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded] * 2


def test_long_speech_is_cut_at_max_utterance() -> None:
    # given: ~4.5 s of speech without a pause, a 2 s limit
    speech = speech_16k(ENGLISH + " " + ENGLISH, "en")
    segmenter = Segmenter(silence_ms=600, max_utterance_s=2.0)
    # when
    events = _feed(segmenter, speech + silence(1.0))
    # then
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert isinstance(events[0], SpeechStarted)
    assert duration_s(ended[0].utterance) == pytest.approx(2.0, abs=0.05)
    assert all(duration_s(e.utterance) <= 2.05 for e in ended)


def test_flush_returns_the_speech_so_far() -> None:
    # given: the user is still talking
    speech = speech_16k(ENGLISH, "en")
    segmenter = Segmenter()
    events = _feed(segmenter, silence(0.2) + speech[: len(speech) // 2 + 1])
    assert events == [SpeechStarted()]
    so_far = segmenter.speech_so_far()
    assert duration_s(so_far) > 0.5
    # when
    ended = segmenter.flush()
    # then
    assert ended is not None
    assert ended.utterance.startswith(so_far)
    assert len(ended.utterance) % 2 == 0
    assert segmenter.flush() is None
    assert segmenter.speech_so_far() == b""


async def test_afeed_matches_feed() -> None:
    stream = speech_16k(CHINESE, "zh") + silence(1.0)
    events: list[object] = []
    segmenter = Segmenter()
    for start in range(0, len(stream), FRAME):
        events.extend(await segmenter.afeed(stream[start : start + FRAME]))
    assert events == _feed(Segmenter(), stream)


def test_the_ending_is_known_before_the_silence_is_waited_out() -> None:
    # given speech followed by silence, fed frame by frame
    segmenter = Segmenter(silence_ms=600)
    stream = silence(0.3) + speech_16k(ENGLISH, "en") + silence(1.0)
    run: list[bytes] = []  # the guesses of the current stretch of silence
    ended: SpeechEnded | None = None
    for start in range(0, len(stream), FRAME):
        for event in segmenter.feed(stream[start : start + FRAME]):
            if isinstance(event, SpeechEnded):
                ended = event
        if ended is None:
            guess = segmenter.ending()
            run = [*run, guess] if guess is not None else []

    # then the final silence gave a guess well before the end, exactly the utterance, and the
    # same one all along (one transcription, not one per frame)
    assert ended is not None
    assert len(run) >= 300 // 20  # 400 ms of waiting, 20 ms frames, give or take a window
    assert all(guess == ended.utterance for guess in run)
    assert segmenter.ending() is None  # over: nothing pending
