"""Voice on the chat page in a real Chromium whose microphone is a WAV file, against daphne."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from conversations.models import Message, MessageRole, MessageSource, MessageStatus
from conversations.tests.conftest import chromium
from testkit.scripted_llm import Script
from voice.audio import SAMPLE_RATE, resample_pcm16, wav_bytes
from voice.tts import synthesize

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHAT_URL = re.compile(r"/c/(?P<id>[0-9a-f-]{36})/$")
QUESTION = "What time does the shop open on Sunday morning?"


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone says: a pause, the question, then a long pause."""
    speech = synthesize(QUESTION, language="en")
    pcm = resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)
    silence = bytes(SAMPLE_RATE * 2)
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    path.write_bytes(wav_bytes(silence[:SAMPLE_RATE] + pcm + silence * 8, SAMPLE_RATE))
    return path


@pytest.fixture(scope="module")
def browser(microphone_wav: Path) -> Iterator[Any]:
    """Chromium with the WAV file as its microphone (played once) and no permission prompt.

    Overrides the chat's `browser` fixture for this module, so `new_page` uses it.
    """
    with chromium(
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ) as launched:
        yield launched


def _start_conversation(page: Any, server: Any) -> str:
    page.goto(f"{server.url}/")
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_url(CHAT_URL)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    match = CHAT_URL.search(page.url)
    assert match is not None
    return match["id"]


def test_speaking_into_the_microphone_shows_the_words_and_plays_the_answer(
    daphne_server, new_page, scripted_llm
):
    # given a visitor in a new conversation
    reply = "We open at nine on Sunday. The bakery opens at eight. See you then!"
    scripted_llm.script = Script.words(reply, token_delay=0.05)
    page = new_page()
    conversation_id = _start_conversation(page, daphne_server)
    mic = page.locator("#mic-btn")
    expect(mic).to_have_accessible_name("Speak")
    # The voice socket's frames as the page got them: checked below, printed if the words never
    # show up (the evidence of what went wrong).
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: (
            ws.on("framereceived", lambda f: frames.append(str(f)[:200]))
            if "/ws/voice/" in ws.url
            else None
        ),
    )

    # when they press the microphone and the (fake) microphone says the question
    mic.click()
    expect(mic).to_have_attribute("data-state", "listening")

    # then their words appear in the chat as their message, and the answer streams in
    user = page.locator(".msg--user .msg-text")
    try:
        expect(user).to_contain_text("Sunday", timeout=30_000)
    except AssertionError:
        print(frames[:40])
        print(daphne_server.log()[-3000:])
        raise
    expect(page.locator(".msg--assistant[data-status=complete] .msg-text")).to_have_text(
        reply, timeout=15_000
    )
    # and the answer is heard: several seconds of audio scheduled, and sound at the output
    deadline = time.monotonic() + 15
    scheduled = peak = 0.0
    while time.monotonic() < deadline and (scheduled < 2000 or peak < 0.01):
        scheduled = float(mic.get_attribute("data-scheduled-ms") or 0)
        peak = float(mic.get_attribute("data-peak") or 0)
        time.sleep(0.1)
    assert scheduled >= 2000, f"only {scheduled} ms of speech scheduled"
    assert peak >= 0.01, f"the output stayed silent (peak {peak})"
    assert any('"transcript.final"' in f for f in frames)
    assert any('"audio.start"' in f for f in frames)

    # and the turn was stored as a voice message with its reply
    mic.click()
    expect(mic).to_have_attribute("data-state", "idle")
    messages = list(
        Message.objects.filter(conversation__public_id=conversation_id).order_by("sequence")
    )
    assert [(m.role, m.source) for m in messages][:1] == [(MessageRole.USER, MessageSource.VOICE)]
    assert (messages[1].text, messages[1].status) == (reply, MessageStatus.COMPLETE)
