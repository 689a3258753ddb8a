"""The chat socket through the real ASGI application (WebsocketCommunicator)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async

from conversations.models import Conversation, ConversationState, Message, MessageStatus
from conversations.tests.wsclient import communicator_for, receive_until, tokens_of
from conversations.turns import wait_for_running_turns
from testkit.scripted_llm import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


async def _connect(conversation: Conversation, session_key: str):  # type: ignore[no-untyped-def]
    communicator = communicator_for(conversation, session_key=session_key)
    connected, _ = await communicator.connect()
    assert connected
    hello = json.loads(await communicator.receive_from())
    assert hello["type"] == "hello"
    assert hello["conversation_id"] == str(conversation.public_id)
    return communicator


async def test_a_message_streams_its_reply_token_by_token(
    anon_conversation, anon_session, scripted_llm
):
    # given
    scripted_llm.script = Script.words("Hello there, how can I help you today?", token_delay=0.03)
    ws = await _connect(anon_conversation, anon_session.session_key)
    client_id = str(uuid.uuid4())

    # when
    await ws.send_json_to({"type": "message.send", "text": "hi", "client_id": client_id})
    frames = await receive_until(ws, "message.done")

    # then
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "message.start"
    ack = next(f for f in frames if f["type"] == "message.ack")
    assert ack["client_id"] == client_id and ack["duplicate"] is False
    reply_id = ack["reply_id"]
    pairs = tokens_of(frames, reply_id)
    assert [seq for seq, _ in pairs] == list(range(1, len(pairs) + 1))
    assert "".join(tok for _, tok in pairs) == "Hello there, how can I help you today?"
    assert kinds.count("message.delta") > 1  # streamed, not one lump
    done = frames[-1]
    assert done["status"] == "complete" and done["last_seq"] == len(pairs)
    assert done["ttft_ms"] is not None and done["total_ms"] >= done["ttft_ms"]
    await ws.disconnect()

    reply = await database_sync_to_async(Message.objects.get)(public_id=reply_id)
    assert reply.text == "Hello there, how can I help you today?"
    assert reply.status == MessageStatus.COMPLETE
    assert reply.token_count == len(pairs)
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=anon_conversation.pk)
    assert conversation.state == ConversationState.WAITING_INPUT
    assert conversation.title == "hi"
    moves = await database_sync_to_async(
        lambda: list(conversation.transitions.values_list("from_state", "to_state"))
    )()
    assert moves[0] == ("waiting_input", "calling_ai")
    assert moves[-1][1] == "waiting_input"
    assert moves in (
        [
            ("waiting_input", "calling_ai"),
            ("calling_ai", "generating"),
            ("generating", "waiting_input"),
        ],
        [("waiting_input", "calling_ai"), ("calling_ai", "waiting_input")],
    )
    # the model saw the system prompt and the user's message
    sent = scripted_llm.requests[-1]
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}
    assert sent["max_tokens"] > 0


async def test_a_duplicate_client_id_attaches_to_the_running_turn(
    anon_conversation, anon_session, scripted_llm
):
    # given a reply in progress
    scripted_llm.script = Script.words("one two three four five six seven eight", token_delay=0.05)
    ws = await _connect(anon_conversation, anon_session.session_key)
    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message.send", "text": "count", "client_id": client_id})
    first = await receive_until(ws, "message.delta")

    # when the same send arrives again (a retry)
    await ws.send_json_to({"type": "message.send", "text": "count", "client_id": client_id})
    rest = await receive_until(ws, "message.done")

    # then one message, one model call, and the socket still gets every token exactly once
    frames = first + rest
    acks = [f for f in frames if f["type"] == "message.ack"]
    assert [a["duplicate"] for a in acks] == [False, True]
    assert acks[0]["reply_id"] == acks[1]["reply_id"]
    pairs = tokens_of(frames, acks[0]["reply_id"])
    assert [seq for seq, _ in pairs] == list(range(1, 9))
    assert len(scripted_llm.requests) == 1
    assert (
        await database_sync_to_async(Message.objects.filter(conversation=anon_conversation).count)()
        == 2
    )
    await ws.disconnect()


async def test_a_duplicate_after_the_reply_ended_gets_the_reply_again(
    anon_conversation, anon_session, scripted_llm
):
    # given a finished turn
    scripted_llm.script = Script.words("done already")
    ws = await _connect(anon_conversation, anon_session.session_key)
    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message.send", "text": "x", "client_id": client_id})
    await receive_until(ws, "message.done")
    await ws.disconnect()

    # when a new socket (a reconnect) retries the send
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "message.send", "text": "x", "client_id": client_id})
    frames = await receive_until(ws, "message.done")

    # then
    ack = next(f for f in frames if f["type"] == "message.ack")
    assert ack["duplicate"] is True
    assert "".join(t for _, t in tokens_of(frames, ack["reply_id"])) == "done already"
    assert len(scripted_llm.requests) == 1
    await ws.disconnect()


async def test_resume_mid_stream_sends_exactly_what_was_missed(
    anon_conversation, anon_session, scripted_llm
):
    # given a reply streaming to a socket that drops after a few tokens
    words = " ".join(f"w{i}" for i in range(30))
    scripted_llm.script = Script.words(words, token_delay=0.03)
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "message.send", "text": "go", "client_id": str(uuid.uuid4())})
    frames = await receive_until(ws, "message.delta")
    frames += await receive_until(ws, "message.delta")
    reply_id = next(f for f in frames if f["type"] == "message.ack")["reply_id"]
    seen = tokens_of(frames, reply_id)
    await ws.disconnect()
    await asyncio.sleep(0.2)  # tokens keep coming while nobody listens

    # when a new socket resumes after the last token it saw
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "resume", "message_id": reply_id, "after_seq": seen[-1][0]})
    rest = await receive_until(ws, "message.done")

    # then the two parts join with no gap and no duplicate
    pairs = seen + tokens_of(rest, reply_id)
    assert [seq for seq, _ in pairs] == list(range(1, 31))
    assert "".join(t for _, t in pairs) == words
    await ws.disconnect()


async def test_resume_after_the_log_expired_gets_a_snapshot(
    anon_conversation, anon_session, scripted_llm
):
    # given a finished reply whose token log is gone
    scripted_llm.script = Script.words("stored reply")
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "message.send", "text": "x", "client_id": str(uuid.uuid4())})
    frames = await receive_until(ws, "message.done")
    reply_id = frames[-1]["message_id"]
    await ws.disconnect()
    from conversations.streams import get_hub

    hub = await get_hub()
    hub._live.pop(reply_id, None)
    if hasattr(hub.backend, "_logs"):
        hub.backend._logs.pop(reply_id, None)
    else:
        await hub.backend._redis.delete(f"chatsite:stream:log:{reply_id}")

    # when
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "resume", "message_id": reply_id, "after_seq": 0})
    snapshot = json.loads(await ws.receive_from())

    # then
    assert snapshot["type"] == "message.snapshot"
    assert snapshot["text"] == "stored reply" and snapshot["status"] == "complete"
    assert snapshot["last_seq"] == 2
    await ws.disconnect()


async def test_a_second_socket_sees_the_same_stream(anon_conversation, anon_session, scripted_llm):
    # given two tabs on one conversation
    scripted_llm.script = Script.words("shared by both tabs", token_delay=0.02)
    tab1 = await _connect(anon_conversation, anon_session.session_key)
    tab2 = await _connect(anon_conversation, anon_session.session_key)

    # when tab 1 sends
    await tab1.send_json_to(
        {"type": "message.send", "text": "hello", "client_id": str(uuid.uuid4())}
    )
    frames1 = await receive_until(tab1, "message.done")
    frames2 = await receive_until(tab2, "message.done")

    # then tab 2 saw the user's message and every token
    start = next(f for f in frames2 if f["type"] == "message.start")
    assert start["message"]["text"] == "hello"
    reply_id = start["reply_id"]
    assert tokens_of(frames2, reply_id) == tokens_of(frames1, reply_id)
    assert not any(f["type"] == "message.ack" for f in frames2)
    await tab1.disconnect()
    await tab2.disconnect()


async def test_generation_survives_the_socket_closing(
    anon_conversation, anon_session, scripted_llm
):
    # given
    scripted_llm.script = Script.words("nobody is watching but it is stored", token_delay=0.02)
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "message.send", "text": "hi", "client_id": str(uuid.uuid4())})
    await receive_until(ws, "message.delta")

    # when the only socket closes
    await ws.disconnect()
    await wait_for_running_turns()

    # then the reply was generated and stored all the same
    reply = await database_sync_to_async(Message.objects.get)(
        conversation=anon_conversation, role="assistant"
    )
    assert reply.status == MessageStatus.COMPLETE
    assert reply.text == "nobody is watching but it is stored"


async def test_a_second_message_during_a_reply_is_refused(
    anon_conversation, anon_session, scripted_llm
):
    # given a reply in progress
    scripted_llm.script = Script.words("a b c d e f g h", token_delay=0.05)
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_json_to({"type": "message.send", "text": "one", "client_id": str(uuid.uuid4())})
    await receive_until(ws, "message.delta")

    # when another message (new client_id) arrives
    other = str(uuid.uuid4())
    await ws.send_json_to({"type": "message.send", "text": "two", "client_id": other})
    frames = await receive_until(ws, "error")

    # then it is refused with a code and nothing was stored for it
    error = frames[-1]
    assert error["code"] == "turn_in_progress" and error["client_id"] == other
    await receive_until(ws, "message.done")
    assert not await database_sync_to_async(Message.objects.filter(client_id=other).exists)()
    # and once the reply is done the next message works
    await ws.send_json_to({"type": "message.send", "text": "two", "client_id": other})
    frames = await receive_until(ws, "message.done")
    assert frames[-1]["status"] == "complete"
    await ws.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "message.send", "text": "hi"}', "invalid_frame"),
        (
            '{"type": "message.send", "text": "   ", "client_id": "%s"}' % uuid.uuid4(),
            "empty_message",
        ),
        (
            '{"type": "message.send", "text": "%s", "client_id": "%s"}'
            % ("x" * 5000, uuid.uuid4()),
            "message_too_long",
        ),
        ('{"type": "resume", "message_id": "%s", "after_seq": -1}' % uuid.uuid4(), "invalid_frame"),
        ('{"type": "resume", "message_id": "%s"}' % uuid.uuid4(), "not_found"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(
    anon_conversation, anon_session, raw, code
):
    # given
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_to(text_data=raw)
    error = json.loads(await ws.receive_from())

    # then
    assert error["type"] == "error" and error["code"] == code
    assert error["message"]
    await ws.send_json_to({"type": "ping"})
    assert json.loads(await ws.receive_from())["type"] == "pong"
    assert await database_sync_to_async(Message.objects.count)() == 0
    await ws.disconnect()


async def test_an_oversized_frame_gets_an_error_not_a_crash(
    anon_conversation, anon_session, settings
):
    # given
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_to(text_data="x" * (settings.CHAT_MAX_FRAME_BYTES + 1))
    error = json.loads(await ws.receive_from())

    # then
    assert error["code"] == "frame_too_large"
    await ws.send_json_to({"type": "ping"})
    assert json.loads(await ws.receive_from())["type"] == "pong"
    await ws.disconnect()


async def test_a_binary_frame_is_refused(anon_conversation, anon_session):
    ws = await _connect(anon_conversation, anon_session.session_key)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert json.loads(await ws.receive_from())["code"] == "binary_not_supported"
    await ws.disconnect()


async def test_a_wrong_origin_is_refused(anon_conversation, anon_session):
    ws = communicator_for(
        anon_conversation, session_key=anon_session.session_key, origin=b"http://evil.example"
    )
    connected, _ = await ws.connect()
    assert not connected


async def test_another_sessions_conversation_is_refused_before_accept(anon_conversation, db):
    # given a different browser session
    from django.contrib.sessions.backends.db import SessionStore

    other = SessionStore()
    await database_sync_to_async(other.create)()

    # when it opens the first session's conversation
    ws = communicator_for(anon_conversation, session_key=other.session_key)
    connected, code = await ws.connect()

    # then
    assert not connected
    assert code == 4403


async def test_another_users_conversation_is_refused(alice_conversation, bob):
    ws = communicator_for(alice_conversation, user=bob)
    connected, code = await ws.connect()
    assert not connected and code == 4403


async def test_a_user_opens_their_own_conversation(alice_conversation, alice):
    ws = communicator_for(alice_conversation, user=alice)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from())["type"] == "hello"
    await ws.disconnect()


@pytest.mark.parametrize("conversation_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_conversation_is_refused(anon_session, conversation_id):
    ws = communicator_for(conversation_id, session_key=anon_session.session_key)
    connected, code = await ws.connect()
    assert not connected and code == 4403


async def test_a_socket_without_session_is_refused(anon_conversation):
    ws = communicator_for(anon_conversation)
    connected, _ = await ws.connect()
    assert not connected


async def _send_and_finish(ws, text="hi"):  # type: ignore[no-untyped-def]
    await ws.send_json_to({"type": "message.send", "text": text, "client_id": str(uuid.uuid4())})
    return await receive_until(ws, "message.done", timeout=10)


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (Script(first_token_delay=1.0), "llm_timeout"),
        (Script(status=500), "llm_unavailable"),
        (Script(status=429), "llm_unavailable"),
    ],
)
async def test_a_failing_model_gives_the_fallback_reply_in_time(
    anon_conversation, anon_session, scripted_llm, settings, script, code
):
    # given a model that is slow to start or failing
    settings.LLM_FIRST_TOKEN_TIMEOUT = 0.3
    scripted_llm.script = script
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    frames = await _send_and_finish(ws, "hello")

    # then the user gets the staff-editable fallback, quickly; the turn ends in error (timeout)
    done = frames[-1]
    assert done["is_fallback"] is True and done["error_code"] == code
    assert done["total_ms"] < 1000
    reply_id = done["message_id"]
    assert (
        "".join(t for _, t in tokens_of(frames, reply_id))
        == "Something went wrong, please try again"
    )
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=anon_conversation.pk)
    expected = ConversationState.TIMEOUT if code == "llm_timeout" else ConversationState.ERROR
    assert conversation.state == expected

    # and once the model is back, the next message works
    scripted_llm.script = Script.words("back again")
    frames = await _send_and_finish(ws, "again")
    assert frames[-1]["status"] == "complete" and not frames[-1]["is_fallback"]
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=anon_conversation.pk)
    assert conversation.state == ConversationState.WAITING_INPUT
    await ws.disconnect()


async def test_the_fallback_follows_the_users_language_and_the_admin_text(
    anon_conversation, anon_session, scripted_llm
):
    # given staff edited the Chinese fallback
    from conversations.models import FallbackReply

    await database_sync_to_async(FallbackReply.objects.update_or_create)(
        language="zh", defaults={"text": "稍等一下，马上回来"}
    )
    scripted_llm.script = Script(status=503)
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    frames = await _send_and_finish(ws, "你好")

    # then
    reply_id = frames[-1]["message_id"]
    assert "".join(t for _, t in tokens_of(frames, reply_id)) == "稍等一下，马上回来"
    await ws.disconnect()


async def test_a_stream_that_stalls_is_kept_as_interrupted(
    anon_conversation, anon_session, scripted_llm, settings
):
    # given a model that stops sending after three tokens
    settings.LLM_TOKEN_TIMEOUT = 0.3
    scripted_llm.script = Script.words("one two three four five", hang_after=3)
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    frames = await _send_and_finish(ws)

    # then what arrived is kept, marked interrupted, with the code
    done = frames[-1]
    assert done["status"] == "interrupted" and done["error_code"] == "llm_timeout"
    assert not done["is_fallback"] and done["last_seq"] == 3
    reply = await database_sync_to_async(Message.objects.get)(public_id=done["message_id"])
    assert reply.text == "one two three " and reply.status == MessageStatus.INTERRUPTED
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=anon_conversation.pk)
    assert conversation.state == ConversationState.TIMEOUT
    await ws.disconnect()


async def test_a_stale_turn_from_a_dead_process_is_recovered(
    anon_conversation, anon_session, scripted_llm, settings
):
    # given a reply left "streaming" by a process that died long ago
    from django.utils import timezone

    settings.CHAT_STALE_TURN_SECONDS = 60

    def leave_a_stuck_turn() -> None:
        user = Message.objects.create(
            conversation=anon_conversation,
            sequence=1,
            role="user",
            text="lost",
            client_id=uuid.uuid4(),
        )
        stuck = Message.objects.create(
            conversation=anon_conversation,
            sequence=2,
            role="assistant",
            status="streaming",
            reply_to=user,
        )
        Message.objects.filter(pk=stuck.pk).update(
            updated_at=timezone.now() - timezone.timedelta(minutes=5)
        )
        Conversation.objects.filter(pk=anon_conversation.pk).update(
            state="generating", streaming_reply=stuck
        )

    await database_sync_to_async(leave_a_stuck_turn)()
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when the user writes again
    frames = await _send_and_finish(ws, "anyone there?")

    # then the new turn runs, and the stuck one is marked interrupted
    assert frames[-1]["status"] == "complete"
    stuck = await database_sync_to_async(Message.objects.get)(
        conversation=anon_conversation, sequence=2
    )
    assert stuck.status == MessageStatus.INTERRUPTED and stuck.error_code == "turn_stale"
    await ws.disconnect()


async def test_history_is_sent_to_the_model(anon_conversation, anon_session, scripted_llm):
    # given an earlier exchange
    scripted_llm.script = Script.words("Nice to meet you, Ann")
    ws = await _connect(anon_conversation, anon_session.session_key)
    await _send_and_finish(ws, "I am Ann")

    # when
    scripted_llm.script = Script.words("You are Ann")
    await _send_and_finish(ws, "who am I?")

    # then the second call carried the first exchange
    messages = scripted_llm.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "I am Ann"
    assert messages[2]["content"] == "Nice to meet you, Ann"
    await ws.disconnect()


async def _orphan_reply(conversation, *, minutes_ago: int, tokens: list[str]):  # type: ignore[no-untyped-def]
    """A reply whose writer process died after logging some tokens."""
    from django.utils import timezone

    from conversations.streams import get_hub

    def store() -> Message:
        user = Message.objects.create(
            conversation=conversation, sequence=1, role="user", text="q", client_id=uuid.uuid4()
        )
        reply = Message.objects.create(
            conversation=conversation,
            sequence=2,
            role="assistant",
            status="streaming",
            reply_to=user,
        )
        Message.objects.filter(pk=reply.pk).update(
            updated_at=timezone.now() - timezone.timedelta(minutes=minutes_ago)
        )
        return reply

    reply = await database_sync_to_async(store)()
    reply_id = str(reply.public_id)
    hub = await get_hub()
    hub.publish(
        str(conversation.public_id),
        {"type": "message.delta", "message_id": reply_id, "seq": 1, "tokens": tokens},
        log_id=reply_id,
    )
    await asyncio.sleep(0.2)  # the Redis writer batches
    return reply_id


async def test_resuming_a_reply_whose_writer_died_ends_it(anon_conversation, anon_session):
    # given a stale reply with three logged tokens and no end
    reply_id = await _orphan_reply(anon_conversation, minutes_ago=10, tokens=["a", "b", "c"])
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when the page resumes it
    await ws.send_json_to({"type": "resume", "message_id": reply_id, "after_seq": 1})
    frames = await receive_until(ws, "message.done")

    # then it gets what the log holds and an end that says why
    assert tokens_of(frames, reply_id) == [(2, "b"), (3, "c")]
    assert frames[-1]["status"] == "interrupted" and frames[-1]["error_code"] == "turn_stale"
    assert frames[-1]["last_seq"] == 3
    await ws.disconnect()


async def test_resuming_a_reply_another_process_is_writing_waits_for_it(
    anon_conversation, anon_session
):
    # given a fresh reply being written elsewhere
    reply_id = await _orphan_reply(anon_conversation, minutes_ago=0, tokens=["a", "b"])
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_json_to({"type": "resume", "message_id": reply_id, "after_seq": 0})
    frames = await receive_until(ws, "message.delta")

    # then the tokens so far, and no premature end
    assert tokens_of(frames, reply_id) == [(1, "a"), (2, "b")]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()
