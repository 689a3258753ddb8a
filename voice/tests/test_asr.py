"""The real Whisper base model (int8, CPU), loaded once for the session (~1.5 s)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voice import asr
from voice.audio import SAMPLE_RATE, resample_pcm16
from voice.exceptions import AudioInvalid, VoiceBusy
from voice.pool import BoundedPool, asr_pool
from voice.tests import CHINESE, ENGLISH, silence, speech_16k
from voice.tts import synthesize

# Traditional forms of characters in CHINESE (订两经) and of some Whisper likes to add (点这们说个).
TRADITIONAL = set("訂兩經點這們說個")
TAKES = 6


@pytest.fixture(scope="session", autouse=True)
def _model() -> None:
    asr.warm_up()


@pytest.fixture
def blocker() -> Iterator[threading.Event]:
    """Set to release whatever the test parked in a pool."""
    event = threading.Event()
    yield event
    event.set()


def test_model_is_prepared_once_and_reused() -> None:
    # given: the session fixture prepared it
    directory = asr.prepare_model()
    stamp = (directory / "model.bin").stat().st_mtime_ns
    # when
    again = asr.prepare_model()
    # then
    assert again == directory
    assert asr.is_prepared(directory)
    assert (directory / "model.bin").stat().st_mtime_ns == stamp
    assert asr.get_model() is asr.get_model()


def test_a_damaged_copy_is_joined_again(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # given: a truncated model.bin where the model should be
    settings.VOICE_MODEL_DIR = tmp_path / "whisper-base"
    settings.VOICE_MODEL_DIR.mkdir()
    (settings.VOICE_MODEL_DIR / "model.bin").write_bytes(b"half a model")
    # when
    directory = asr.prepare_model()
    # then
    assert directory == settings.VOICE_MODEL_DIR
    assert asr.is_prepared(directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whisper-base"]  # no temp dirs left


def _transcribe_takes(
    text: str, language: str, keywords: Callable[[str], bool]
) -> list[asr.Transcript]:
    """Transcripts of fresh espeak takes until one has the keywords (at most TAKES).

    espeak varies its voice at random and about one Chinese take in five comes out too robotic
    for Whisper base (measured 14 of 18 right), so one take would make a flaky test; a human speaker
    is not the problem here.
    """
    transcripts = []
    for _ in range(TAKES):
        speech = synthesize(text, language=language)
        pcm = resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)
        transcripts.append(asr.transcribe(pcm, language=language))
        if keywords(transcripts[-1].text):
            break
    return transcripts


def test_english_is_transcribed() -> None:
    # when
    transcripts = _transcribe_takes(
        ENGLISH, "en", lambda text: "order" in text.lower() and "classic" in text.lower()
    )
    # then
    transcript = transcripts[-1]
    assert "order" in transcript.text.lower()
    assert "classic" in transcript.text.lower()
    assert transcript.language == "en"
    assert transcript.audio_s == pytest.approx(2.2, abs=0.5)
    assert transcript.elapsed_s > 0


def test_chinese_is_transcribed_in_simplified_characters() -> None:
    # when
    transcripts = _transcribe_takes(CHINESE, "zh", lambda text: "套餐" in text or "两份" in text)
    # then
    assert "套餐" in transcripts[-1].text or "两份" in transcripts[-1].text, transcripts
    for transcript in transcripts:
        assert not TRADITIONAL & set(transcript.text), transcript.text
        assert transcript.language == "zh"


@pytest.mark.parametrize(("text", "language"), [(ENGLISH, "en"), (CHINESE, "zh")])
def test_language_is_detected_when_unknown(text: str, language: str) -> None:
    # when: no language given (a take at a time, as above)
    for _ in range(TAKES):
        speech = synthesize(text, language=language)
        pcm = resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)
        transcript = asr.transcribe(pcm)
        if transcript.language == language:
            break
    # then
    assert transcript.language == language
    assert transcript.text


@pytest.mark.parametrize(("language", "expected"), [("zh-hans", "zh"), ("en-US", "en")])
def test_language_codes_are_normalised(language: str, expected: str) -> None:
    transcript = asr.transcribe(silence(0.1), language=language)
    assert transcript == asr.Transcript("", expected, pytest.approx(0.1), transcript.elapsed_s)


def test_too_little_audio_is_not_decoded() -> None:
    transcript = asr.transcribe(b"")
    assert transcript.text == ""
    assert transcript.audio_s == 0


def test_invalid_audio_is_refused() -> None:
    with pytest.raises(AudioInvalid):
        asr.transcribe(b"\x00\x00\x00")
    with pytest.raises(AudioInvalid):
        asr.transcribe(silence(asr.MAX_AUDIO_S + 1), language="en")


async def test_atranscribe_partial_runs_in_the_pool() -> None:
    # when
    transcript = await asr.atranscribe(speech_16k(ENGLISH, "en"), language="en", partial=True)
    # then
    assert "order" in transcript.text.lower()
    assert asr_pool().in_flight == 0


async def test_full_asr_pool_answers_busy(blocker: threading.Event) -> None:
    # given: every worker is busy
    pool = asr_pool()
    parked = [pool.submit(blocker.wait) for _ in range(pool.max_workers)]
    speech = speech_16k(CHINESE, "zh")
    # when / then: a partial transcript does not wait
    with pytest.raises(VoiceBusy) as info:
        await asr.atranscribe(speech, language="zh", partial=True)
    assert (info.value.code, info.value.status) == ("voice_busy", 503)
    # given: the queue is full too
    parked += [pool.submit(blocker.wait) for _ in range(pool.max_queued)]
    # when / then
    with pytest.raises(VoiceBusy):
        await asr.atranscribe(speech, language="zh")
    # when: the work finishes, there is room again
    blocker.set()
    await asyncio.gather(*(asyncio.wrap_future(f) for f in parked))
    transcript = await asr.atranscribe(speech, language="zh")
    assert transcript.text


async def test_bounded_pool_limits_running_and_queued(blocker: threading.Event) -> None:
    # given
    pool = BoundedPool("test", max_workers=2, max_queued=1)
    started = threading.Semaphore(0)

    def work(value: int) -> int:
        started.release()
        blocker.wait()
        return value

    # when: four callers at once
    calls = [asyncio.ensure_future(pool.run(work, i)) for i in range(4)]
    await asyncio.sleep(0)
    # then: two run, one waits, the fourth is refused at once
    assert isinstance(calls[3].exception(), VoiceBusy)
    assert started.acquire(timeout=5) and started.acquire(timeout=5)
    assert pool.in_flight == 3
    with pytest.raises(VoiceBusy):
        pool.submit(work, 9, wait=False)
    blocker.set()
    assert await asyncio.gather(*calls[:3]) == [0, 1, 2]
    assert pool.in_flight == 0
    pool.shutdown()


async def test_cancelled_caller_keeps_its_slot_until_the_work_ends(
    blocker: threading.Event,
) -> None:
    # given
    pool = BoundedPool("test", max_workers=1, max_queued=0)
    call = asyncio.ensure_future(pool.run(blocker.wait))
    await asyncio.sleep(0)
    # when
    call.cancel()
    await asyncio.sleep(0)
    # then: the thread still works, so there is no room yet
    with pytest.raises(VoiceBusy):
        pool.submit(blocker.wait)
    blocker.set()
    for _ in range(100):
        if pool.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.in_flight == 0
    pool.shutdown()


def test_real_time_factor_for_a_3_second_utterance() -> None:
    # given: ~3 s of speech, model warm
    speech = speech_16k("I would like to order two classic sets for tomorrow evening.", "en")
    asr.transcribe(speech[:32000], language="en")
    # when
    started = time.monotonic()
    transcript = asr.transcribe(speech, language="en")
    elapsed = time.monotonic() - started
    # then: well under real time on 2 cores (measured ~0.5)
    assert 2.5 < transcript.audio_s < 4.5
    assert elapsed / transcript.audio_s < 2.0
    print(f"ASR real-time factor {elapsed / transcript.audio_s:.2f} for {transcript.audio_s:.1f} s")
