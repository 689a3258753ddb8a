"""Staff's sensitive words in a conversation: refused and masked input, a masked reply stream."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from channels.db import database_sync_to_async

from conversations.models import Message, MessageRole
from conversations.moderation import ReplyFilter, moderate_input
from conversations.tests.wsclient import communicator_for, receive_until, tokens_of
from conversations.turns import wait_for_running_turns
from nlu.exceptions import ContentBlocked
from nlu.moderation import registry
from nlu.moderation.matcher import Action, Entry, Matcher
from nlu.moderation.services import sensitive_word_create
from testkit.scripted_llm import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


@pytest.fixture(autouse=True)
def _words(settings):  # type: ignore[no-untyped-def]
    """A block word, a mask word in each language and a flag word, seen at once by this process."""
    settings.MODERATION_CHECK_SECONDS = 0
    registry.reset()
    sensitive_word_create(word="kaboomword", category="abuse", action="block")
    sensitive_word_create(word="傻逼", category="abuse", action="mask", language="zh")
    sensitive_word_create(word="scamcoin", category="ads", action="mask", language="en")
    sensitive_word_create(word="election", category="politics", action="flag")
    registry.words_changed()
    yield
    registry.reset()


async def _connect(conversation, session_key):  # type: ignore[no-untyped-def]
    ws = communicator_for(conversation, session_key=session_key)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from())["type"] == "hello"
    return ws


async def test_a_blocked_word_is_refused_with_a_stable_code_and_nothing_is_stored(
    anon_conversation, anon_session, scripted_llm, caplog
):
    # given
    ws = await _connect(anon_conversation, anon_session.session_key)
    client_id = str(uuid.uuid4())

    # when the message holds a block word, spaced out and in full-width letters
    with caplog.at_level(logging.WARNING, logger="conversations.moderation"):
        await ws.send_json_to(
            {
                "type": "message.send",
                "text": "you are a ＫＡＢＯＯＭＷＯＲＤ",
                "client_id": client_id,
            }
        )
        await ws.send_json_to(
            {"type": "message.send", "text": "k.a.b.o.o.m.w.o.r.d!", "client_id": str(uuid.uuid4())}
        )
        first = json.loads(await ws.receive_from())
        second = json.loads(await ws.receive_from())

    # then both are refused with content_blocked, nothing is stored and no model is asked
    for frame in (first, second):
        assert frame["type"] == "error" and frame["code"] == "content_blocked"
    assert first["client_id"] == client_id
    count = await database_sync_to_async(
        Message.objects.filter(conversation=anon_conversation).count
    )()
    assert count == 0
    assert scripted_llm.requests == []
    # and the log names the category and action, never the text
    hits = [r for r in caplog.records if r.getMessage() == "sensitive word"]
    assert hits and all(r.category == "abuse" and r.action == "block" for r in hits)
    assert all("kaboom" not in json.dumps(r.__dict__, default=str).lower() for r in hits)
    # and the socket still works
    scripted_llm.script = Script.words("Fine.")
    await ws.send_json_to({"type": "message.send", "text": "hello", "client_id": str(uuid.uuid4())})
    frames = await receive_until(ws, "message.done")
    assert frames[-1]["status"] == "complete"
    await ws.disconnect()


async def test_a_mask_word_is_masked_before_it_is_stored_or_sent_to_the_model(
    anon_conversation, anon_session, scripted_llm
):
    # given
    scripted_llm.script = Script.words("Noted.")
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_json_to(
        {
            "type": "message.send",
            "text": "你这个傻 逼, buy scamcoin now",
            "client_id": str(uuid.uuid4()),
        }
    )
    await receive_until(ws, "message.done")
    await ws.disconnect()
    await wait_for_running_turns()

    # then the stored message and the model's prompt have the words masked, the rest intact
    stored = await database_sync_to_async(Message.objects.get)(
        conversation=anon_conversation, role=MessageRole.USER
    )
    assert stored.text == "你这个***, buy ******** now"
    assert scripted_llm.requests[-1]["messages"][-1]["content"] == "你这个***, buy ******** now"


async def test_a_word_the_model_spells_out_token_by_token_never_reaches_the_client(
    anon_conversation, anon_session, scripted_llm
):
    # given a model that writes a mask word one character per token, and a block word split
    tokens = list("Sure! Try SCAMcoin") + [" today, or ", "kab", "oomw", "ord", ", "]
    tokens += ["傻", "逼", " is rude. Bye."]
    scripted_llm.script = Script(tokens=tokens)
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when
    await ws.send_json_to({"type": "message.send", "text": "hi", "client_id": str(uuid.uuid4())})
    frames = await receive_until(ws, "message.done")
    await ws.disconnect()
    await wait_for_running_turns()

    # then no frame carried any part of a listed word, the text is the whole reply filtered,
    # and the stored reply is what the client got
    reply_id = next(f for f in frames if f["type"] == "message.ack")["reply_id"]
    shown = "".join(token for _, token in tokens_of(frames, reply_id))
    matcher = Matcher(
        [
            Entry("kaboomword", Action.BLOCK, "abuse"),
            Entry("傻逼", Action.MASK, "abuse"),
            Entry("scamcoin", Action.MASK, "ads"),
        ]
    )
    expected = matcher.apply("".join(scripted_llm.script.tokens)).text
    assert shown == expected
    assert "scam" not in shown.lower() and "kaboom" not in shown and "傻" not in shown
    stored = await database_sync_to_async(Message.objects.get)(public_id=reply_id)
    assert stored.text == shown


async def test_a_flagged_word_passes_and_marks_the_message_for_review(
    anon_conversation, anon_session, scripted_llm, admin_client
):
    # given
    scripted_llm.script = Script.words("The election is on Sunday.")
    ws = await _connect(anon_conversation, anon_session.session_key)

    # when a message and its reply hold a flag word
    await ws.send_json_to(
        {"type": "message.send", "text": "When is the election?", "client_id": str(uuid.uuid4())}
    )
    frames = await receive_until(ws, "message.done")
    await ws.disconnect()
    await wait_for_running_turns()

    # then both pass unchanged and are marked, with the category and action only
    reply_id = next(f for f in frames if f["type"] == "message.ack")["reply_id"]
    assert "".join(t for _, t in tokens_of(frames, reply_id)) == "The election is on Sunday."
    messages = await database_sync_to_async(
        lambda: list(anon_conversation.messages.order_by("sequence"))
    )()
    assert [m.flagged for m in messages] == [True, True]
    assert messages[0].text == "When is the election?"
    assert messages[0].moderation == [{"category": "politics", "action": "flag", "count": 1}]
    # and staff find the conversation with the admin's filter
    page = await database_sync_to_async(admin_client.get)(
        "/admin/conversations/conversation/?flagged=yes"
    )
    assert page.status_code == 200
    assert str(anon_conversation.public_id) in page.content.decode()


def test_input_moderation_passes_flagged_words_and_refuses_blocked_ones():
    matcher = Matcher(
        [Entry("election", Action.FLAG, "politics"), Entry("kaboomword", Action.BLOCK, "abuse")]
    )
    moderated = moderate_input("the election is on", matcher=matcher)
    assert moderated.text == "the election is on" and moderated.flagged
    with pytest.raises(ContentBlocked) as refused:
        moderate_input("KaboomWord", matcher=matcher)
    assert refused.value.code == "content_blocked"
    assert refused.value.extra == {"categories": ["abuse"]}


def test_with_no_words_the_reply_filter_holds_nothing_back():
    safety = ReplyFilter(Matcher([]))
    assert safety.feed("a") == "a" and safety.feed("b") == "b" and safety.finish() == ""
