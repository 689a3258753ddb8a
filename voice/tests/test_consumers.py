"""The voice socket through the real ASGI application: real VAD, ASR and TTS, scripted LLM."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from chatsite.asgi import application
from conversations.models import Conversation, Message, MessageRole, MessageSource, MessageStatus
from conversations.tests.wsclient import communicator_for, tokens_of
from testkit.scripted_llm import Script
from voice.audio import SAMPLE_RATE, resample_pcm16
from voice.exceptions import VoiceBusy
from voice.pool import asr_pool
from voice.tts import synthesize

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

FRAME_BYTES = 1280  # 40 ms of 16 kHz PCM16, what the page's worklet posts
Event = dict[str, Any] | bytes


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * SAMPLE_RATE) * 2)


@cache
def spoken(text: str, language: str = "en") -> bytes:
    """The sentence as 16 kHz PCM16, as a microphone would give it (TTS stands in for a person)."""
    speech = synthesize(text, language=language)
    return resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)


def utterance(text: str, *, tail_s: float = 1.2) -> bytes:
    """Silence, the sentence, then enough silence for the segmenter to call it ended."""
    return silence(0.3) + spoken(text) + silence(tail_s)


def voice_communicator(conversation: Conversation, session_key: str) -> WebsocketCommunicator:
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={session_key}".encode()),
    ]
    return WebsocketCommunicator(
        application, f"/ws/voice/{conversation.public_id}/", headers=headers
    )


async def connect(conversation: Conversation, session_key: str) -> WebsocketCommunicator:
    ws = voice_communicator(conversation, session_key)
    connected, _ = await ws.connect()
    assert connected
    hello = json.loads(await ws.receive_from())
    assert hello["type"] == "hello" and hello["sample_rate"] == SAMPLE_RATE
    await ws.send_json_to({"type": "start", "language": None})
    return ws


async def send_audio(ws: WebsocketCommunicator, pcm: bytes, *, pace: float = 0.0) -> None:
    """Send the audio in 40 ms frames, sleeping `pace` seconds between frames."""
    for offset in range(0, len(pcm), FRAME_BYTES):
        await ws.send_to(bytes_data=pcm[offset : offset + FRAME_BYTES])
        await asyncio.sleep(pace)


async def receive_until(
    ws: WebsocketCommunicator,
    done: Callable[[dict[str, Any]], bool],
    *,
    events: list[Event] | None = None,
    timeout: float = 60.0,
) -> list[Event]:
    """Every frame (JSON as dicts, audio as bytes) up to and including the first `done` one."""
    events = [] if events is None else events
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out; got {[_kind(e) for e in events]}")
        output = await ws.receive_output(timeout=remaining)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            events.append(output["bytes"])
            continue
        frame = json.loads(output["text"])
        events.append(frame)
        if done(frame):
            return events


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == kind


def frames(events: list[Event], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if isinstance(e, dict) and e["type"] == kind]


def _kind(event: Event) -> str:
    return f"<{len(event)} bytes>" if isinstance(event, bytes) else event["type"]


def audio_after(events: list[Event], start: dict[str, Any]) -> bytes:
    """The binary frames that follow one audio.start, up to the next JSON audio.* frame."""
    index = next(i for i, e in enumerate(events) if e is start)
    out = b""
    for event in events[index + 1 :]:
        if isinstance(event, bytes):
            out += event
        elif event["type"].startswith("audio."):
            break
    return out


QUESTION = "What time does the shop open on Sunday morning?"


async def test_a_spoken_question_is_transcribed_answered_and_spoken_back(
    anon_conversation, anon_session, scripted_llm
):
    # given a voice socket and a typed-chat socket on the same conversation
    reply = "Sure. We open at nine on Sunday morning. See you then, and have a nice day!"
    scripted_llm.script = Script.words(reply, token_delay=0.06)
    chat = communicator_for(anon_conversation, session_key=anon_session.session_key)
    assert (await chat.connect())[0]
    assert json.loads(await chat.receive_from())["type"] == "hello"
    ws = await connect(anon_conversation, anon_session.session_key)

    # when the user speaks, at the pace of a microphone
    await send_audio(ws, utterance(QUESTION), pace=0.04)
    events = await receive_until(ws, of_type("audio.done"))

    # then partial and final transcripts, the reply's tokens and its speech came back
    kinds = [_kind(e) for e in events]
    assert kinds[0] == "speech.start"
    assert frames(events, "transcript.partial"), kinds
    (final,) = frames(events, "transcript.final")
    assert final["language"] == "en"
    assert "open" in final["text"].lower() and "sunday" in final["text"].lower(), final
    (ack,) = frames(events, "message.ack")
    pairs = tokens_of([e for e in events if isinstance(e, dict)], ack["reply_id"])
    assert "".join(t for _, t in pairs) == reply
    (done,) = frames(events, "message.done")
    assert done["status"] == "complete"
    starts = frames(events, "audio.start")
    assert [s["sentence"] for s in starts] == [1, 2, 3]
    assert [s["text"].strip() for s in starts] == [
        "Sure.",
        "We open at nine on Sunday morning.",
        "See you then, and have a nice day!",
    ]
    for start in starts:
        pcm = audio_after(events, start)
        assert len(pcm) == start["bytes"] > 0 and len(pcm) % 2 == 0
        seconds = len(pcm) / 2 / start["sample_rate"]
        assert 0.2 < seconds < 10
    # the first sentence was spoken while the rest of the reply was still being written
    assert kinds.index("audio.start") < kinds.index("message.done")
    assert frames(events, "audio.done")[0]["sentences"] == 3
    await ws.disconnect()

    # and the turn is an ordinary one: stored with source voice, seen by the chat socket
    user = await database_sync_to_async(Message.objects.get)(public_id=ack["message_id"])
    assert user.source == MessageSource.VOICE and user.text == final["text"].strip()
    stored = await database_sync_to_async(Message.objects.get)(public_id=ack["reply_id"])
    assert (stored.text, stored.status) == (reply, MessageStatus.COMPLETE)
    typed = []
    while not typed or typed[-1]["type"] != "message.done":
        typed.append(json.loads(await chat.receive_from(timeout=5)))
    assert typed[0]["type"] == "message.start"
    assert typed[0]["message"]["text"] == user.text
    assert "".join(t for _, t in tokens_of(typed, ack["reply_id"])) == reply
    await chat.disconnect()


async def test_speaking_over_the_reply_interrupts_it_and_answers_the_new_utterance(
    anon_conversation, anon_session, scripted_llm
):
    # given a long reply being spoken
    long_reply = " ".join(f"This is sentence number {i} of a long answer." for i in range(1, 30))
    scripted_llm.script = Script.words(long_reply, token_delay=0.08)
    ws = await connect(anon_conversation, anon_session.session_key)
    await send_audio(ws, utterance(QUESTION), pace=0.01)
    first = await receive_until(ws, of_type("audio.start"))
    first_reply = frames(first, "message.ack")[0]["reply_id"]

    # when the user speaks again before it has finished
    scripted_llm.script = Script.words("Of course. Goodbye!", token_delay=0.01)
    await send_audio(ws, utterance("Please stop talking now."), pace=0.01)
    events = await receive_until(
        ws,
        lambda f: f["type"] == "audio.done" and f["reply_id"] != first_reply,
        events=list(first),
    )

    # then playback is stopped, the first reply is cut and stored interrupted
    (barge,) = frames(events, "barge_in")
    assert barge["reply_id"] == first_reply and barge["cancelled"] is True
    dones = frames(events, "message.done")
    assert dones[0]["message_id"] == first_reply
    assert (dones[0]["status"], dones[0]["error_code"]) == ("interrupted", "barge_in")
    assert dones[0]["last_seq"] < len(long_reply.split(" "))
    # no audio of the first reply after the barge-in
    after = events[next(i for i, e in enumerate(events) if e is barge) :]
    assert all(s["reply_id"] != first_reply for s in frames(after, "audio.start"))
    # and the new utterance gets its own turn, spoken
    finals = frames(events, "transcript.final")
    assert len(finals) == 2 and "stop" in finals[1]["text"].lower()
    second_reply = frames(events, "message.ack")[1]["reply_id"]
    assert dones[1] == {**dones[1], "message_id": second_reply, "status": "complete"}
    assert frames(after, "audio.start")[0]["reply_id"] == second_reply
    await ws.disconnect()

    stored = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(
                conversation=anon_conversation, role=MessageRole.ASSISTANT
            ).values_list("status", "error_code")
        )
    )()
    assert stored == [(MessageStatus.INTERRUPTED, "barge_in"), (MessageStatus.COMPLETE, "")]


async def test_cancel_stops_the_reply_being_spoken(anon_conversation, anon_session, scripted_llm):
    # given a long reply being spoken
    scripted_llm.script = Script.words(
        " ".join(f"Sentence {i} of many." for i in range(40)), token_delay=0.08
    )
    ws = await connect(anon_conversation, anon_session.session_key)
    await send_audio(ws, utterance(QUESTION))
    events = await receive_until(ws, of_type("audio.start"))
    reply_id = frames(events, "message.ack")[0]["reply_id"]

    # when the user presses stop
    await ws.send_json_to({"type": "cancel"})
    events = await receive_until(ws, of_type("message.done"))

    # then playback stops and the reply is stored interrupted
    assert frames(events, "barge_in") == [
        {"type": "barge_in", "reply_id": reply_id, "utterance": 1, "cancelled": True}
    ]
    assert (events[-1]["status"], events[-1]["error_code"]) == ("interrupted", "barge_in")
    assert await ws.receive_nothing(timeout=0.5)  # no more audio for it
    await ws.disconnect()
    stored = await database_sync_to_async(Message.objects.get)(public_id=reply_id)
    assert (stored.status, stored.error_code) == (MessageStatus.INTERRUPTED, "barge_in")


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ({"bytes_data": b"\x01\x02\x03"}, "audio_invalid"),  # odd length: not PCM16
        ({"bytes_data": bytes(settings.VOICE_MAX_FRAME_BYTES + 2)}, "audio_invalid"),
        ({"text_data": "{not json"}, "invalid_json"),
        ({"text_data": '{"type": "start", "language": "fr"}'}, "invalid_frame"),
        ({"text_data": '{"type": "shout"}'}, "unknown_type"),
        ({"text_data": "x" * 5000}, "frame_too_large"),
    ],
)
async def test_a_bad_frame_gets_an_error_frame_and_the_socket_survives(
    anon_conversation, anon_session, send, code
):
    # given
    ws = await connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_to(**send)
    error = json.loads(await ws.receive_from(timeout=5))

    # then
    assert error["type"] == "error" and error["code"] == code
    assert "Traceback" not in error["message"]
    await ws.send_json_to({"type": "ping"})
    assert json.loads(await ws.receive_from(timeout=5)) == {"type": "pong"}
    await ws.disconnect()


async def test_a_full_asr_pool_answers_voice_busy_and_keeps_the_socket(
    anon_conversation, anon_session, scripted_llm
):
    # given every ASR worker and queue slot of this process taken by long work
    pool = asr_pool()
    release = threading.Event()
    held = [
        pool.submit(release.wait, 30)
        for _ in range(pool.max_workers + pool.max_queued - pool.in_flight)
    ]
    with pytest.raises(VoiceBusy):
        pool.submit(release.wait, 30)
    ws = await connect(anon_conversation, anon_session.session_key)
    try:
        # when the user says something
        await send_audio(ws, utterance(QUESTION))
        events = await receive_until(ws, of_type("error"))
    finally:
        release.set()
        for future in held:
            future.result(5)

    # then an error frame with the stable code, no turn, and the socket still answers
    assert events[-1]["code"] == "voice_busy"
    await ws.send_json_to({"type": "ping"})
    assert json.loads(await ws.receive_from(timeout=5)) == {"type": "pong"}
    await ws.disconnect()
    assert not await database_sync_to_async(
        Message.objects.filter(conversation=anon_conversation).exists
    )()
    assert not scripted_llm.requests


async def test_an_utterance_longer_than_the_limit_is_cut_and_answered(
    anon_conversation, anon_session, scripted_llm, settings
):
    # given a short limit, and someone who talks on without a pause
    settings.VOICE_MAX_UTTERANCE_S = 2.0
    scripted_llm.script = Script.words("Noted.")
    ws = await connect(anon_conversation, anon_session.session_key)
    speech = spoken(QUESTION) + spoken("And also on Saturday afternoon, if you please.")
    assert len(speech) / 2 / SAMPLE_RATE > 3.0

    # when
    await send_audio(ws, silence(0.3) + speech)
    events = await receive_until(ws, of_type("transcript.final"))

    # then the first 2 s are transcribed as an utterance of their own
    final = events[-1]
    assert 0 < final["audio_ms"] <= 2100 and final["text"]
    await ws.send_json_to({"type": "end"})
    events = await receive_until(ws, of_type("message.done"))
    assert frames(events, "message.ack")
    await ws.disconnect()


async def test_end_of_microphone_finishes_the_utterance_without_waiting_for_silence(
    anon_conversation, anon_session, scripted_llm
):
    # given speech with no silence after it
    scripted_llm.script = Script.words("Nine o'clock.")
    ws = await connect(anon_conversation, anon_session.session_key)
    await send_audio(ws, silence(0.3) + spoken(QUESTION))

    # when the microphone is closed
    await ws.send_json_to({"type": "end"})
    events = await receive_until(ws, of_type("audio.done"))

    # then it is answered
    assert "sunday" in frames(events, "transcript.final")[0]["text"].lower()
    assert any(isinstance(e, bytes) for e in events)
    await ws.disconnect()


async def test_someone_elses_conversation_is_refused(anon_conversation, alice):
    # given a socket with no session that owns the conversation
    ws = voice_communicator(anon_conversation, "not-a-session")

    # when / then
    connected, code = await ws.connect()
    assert not connected and code == 4403


async def test_the_final_transcript_starts_before_the_end_of_speech_is_confirmed(
    anon_conversation, anon_session, scripted_llm, monkeypatch
):
    # given a recogniser that notes what it is asked (the real one is slow and tested above;
    # here only the session's timing decision matters)
    from voice import asr

    calls: list[dict[str, Any]] = []

    async def noting(pcm: bytes, *, language=None, partial=False, wait=None):  # type: ignore[no-untyped-def]
        calls.append({"partial": partial, "wait": wait, "bytes": len(pcm)})
        return asr.Transcript("what time do you open", "en", len(pcm) / 32000, 0.01)

    monkeypatch.setattr(asr, "atranscribe", noting)
    scripted_llm.script = Script.words("At nine.")
    ws = await connect(anon_conversation, anon_session.session_key)

    # when the user speaks and falls silent
    await send_audio(ws, utterance(QUESTION), pace=0.005)
    events = await receive_until(ws, of_type("message.done"))

    # then the one final transcription was the early one (started 400 ms into the silence,
    # without queueing), and it was used: the utterance was not transcribed a second time
    finals = [c for c in calls if not c["partial"]]
    assert [c["wait"] for c in finals] == [False], calls
    (final,) = frames(events, "transcript.final")
    assert final["text"] == "what time do you open"
    assert final["audio_ms"] == round(finals[0]["bytes"] / 32)
    await ws.disconnect()
