from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured

from voice.audio import duration_s, read_wav, rms, wav_bytes
from voice.tests import CHINESE, ENGLISH
from voice.tts import (
    ESPEAK_SAMPLE_RATE,
    Speech,
    asynthesize,
    get_engine,
    split_sentences,
    synthesize,
)

# espeak-ng varies its voice slightly at random, so the same text never gives the same bytes:
# compare lengths, which stay within a few percent.


def _seconds(text: str, language: str) -> float:
    speech = synthesize(text, language=language)
    return duration_s(speech.pcm, speech.sample_rate)


@pytest.mark.parametrize(("text", "language"), [(ENGLISH, "en"), (CHINESE, "zh")])
def test_synthesize_speaks_a_short_sentence(text: str, language: str) -> None:
    # when
    speech = synthesize(text, language=language)
    # then
    assert speech.sample_rate == ESPEAK_SAMPLE_RATE == 22050
    assert 0.5 < duration_s(speech.pcm, speech.sample_rate) < 8.0
    assert rms(speech.pcm) > 0.02
    assert read_wav(wav_bytes(speech.pcm, speech.sample_rate)) == (speech.pcm, 22050)


def test_chinese_and_english_voices_differ() -> None:
    # given: the same digits read in each language
    zh = synthesize("123", language="zh")
    en = synthesize("123", language="en")
    # then
    assert zh.pcm != en.pcm


@pytest.mark.parametrize("language", ["zh-hans", "zh-CN", "ZH"])
def test_chinese_language_codes_pick_the_chinese_voice(language: str) -> None:
    assert _seconds(CHINESE, language) == pytest.approx(_seconds(CHINESE, "zh"), rel=0.05)
    assert _seconds(CHINESE, language) != pytest.approx(_seconds(CHINESE, "en"), rel=0.2)


def test_other_languages_fall_back_to_english() -> None:
    assert _seconds(ENGLISH, "fr") == pytest.approx(_seconds(ENGLISH, "en"), rel=0.05)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "**"])
def test_nothing_to_say_gives_empty_audio(text: str) -> None:
    assert synthesize(text, language="en") == Speech(b"", 22050)


def test_markdown_symbols_are_not_read_out() -> None:
    assert _seconds("**Hello** `world`", "en") == pytest.approx(
        _seconds("Hello world", "en"), rel=0.05
    )


def test_concurrent_calls_are_serialised_and_correct() -> None:
    # given
    texts = [ENGLISH, "Thank you very much.", "Goodbye.", "See you tomorrow."] * 2
    expected = {text: _seconds(text, "en") for text in set(texts)}
    results: dict[int, float] = {}

    def speak(index: int, text: str) -> None:
        results[index] = _seconds(text, "en")

    # when
    threads = [threading.Thread(target=speak, args=item) for item in enumerate(texts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    for index, text in enumerate(texts):
        assert results[index] == pytest.approx(expected[text], rel=0.05)


async def test_asynthesize_runs_in_the_pool() -> None:
    speech = await asynthesize(CHINESE, language="zh")
    seconds = duration_s(speech.pcm, speech.sample_rate)
    assert seconds == pytest.approx(_seconds(CHINESE, "zh"), rel=0.05)


@pytest.mark.parametrize(
    ("text", "sentences", "rest"),
    [
        ("Hello there. How are", ["Hello there."], "How are"),
        ("It costs 3.5 dollars. OK", ["It costs 3.5 dollars."], "OK"),
        ("Done.", [], "Done."),
        ("Done. ", ["Done."], ""),
        ("Really?! Yes", ["Really?!"], "Yes"),
        ('He said "stop." Then', ['He said "stop."'], "Then"),
        ("你好。我想订餐！还有", ["你好。", "我想订餐！"], "还有"),
        ("好的；谢谢", ["好的；"], "谢谢"),
        ("他说：“好的。”然后", ["他说：“好的。”"], "然后"),
        ("Line one\nLine two", ["Line one"], "Line two"),
        ("First.\n\n- item\n", ["First.", "- item"], ""),
        ("... \n", [], ""),
        ("", [], ""),
    ],
)
def test_split_sentences(text: str, sentences: list[str], rest: str) -> None:
    assert split_sentences(text) == (sentences, rest)


def test_split_sentences_cuts_long_clauses_at_commas() -> None:
    # given: one long Chinese sentence with no full stop yet
    text = "我们有经典套餐，" * 10 + "还有"
    # when
    sentences, rest = split_sentences(text)
    # then
    assert sentences
    assert all(s.endswith("，") and len(s) <= 48 for s in sentences)
    assert "".join(sentences) + rest == text


def test_split_sentences_streams_token_by_token() -> None:
    # given
    reply = "Sure. We have two sets. 经典套餐很好。Anything else?"
    spoken: list[str] = []
    pending = ""
    # when
    for token in reply.split(" "):
        done, pending = split_sentences(pending + token + " ")
        spoken.extend(done)
    # then
    assert spoken == ["Sure.", "We have two sets.", "经典套餐很好。", "Anything else?"]
    assert pending == ""


def test_piper_speaks_english_when_chosen_and_installed(settings) -> None:  # type: ignore[no-untyped-def]
    # given: the optional GPL engine (requirements-piper.txt); Chinese stays with espeak
    settings.VOICE_TTS_ENGINE = "piper"
    try:
        import piper  # noqa: F401
    except ImportError:
        # then: without the package the setting is refused with what to install
        with pytest.raises(ImproperlyConfigured, match="requirements-piper.txt"):
            synthesize(ENGLISH, language="en")
        return
    # when
    english = synthesize(ENGLISH, language="en")
    chinese = synthesize(CHINESE, language="zh")
    # then
    assert type(get_engine("en")).__name__ == "PiperEngine"
    assert type(get_engine("zh")).__name__ == "EspeakEngine"
    assert english.sample_rate == chinese.sample_rate == 22050
    assert 0.5 < duration_s(english.pcm, english.sample_rate) < 8.0
    assert rms(english.pcm) > 0.02
