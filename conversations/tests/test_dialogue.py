"""The dialogue engine end to end: the real socket, the demo domain, a scripted model.

The scripted model plays two parts: the intent labeller (nlu/fallback.py, recognised by its
system prompt) and the reply writer.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import connection

from conversations.models import (
    Conversation,
    ConversationState,
    ConversationTransition,
    Message,
    MessageRole,
    SlotChange,
    SlotValue,
)
from conversations.tests.wsclient import communicator_for, receive_until
from conversations.turns import wait_for_running_turns
from nlu.fallback import INSTRUCTIONS
from nlu.models import Intent
from testkit.scripted_llm import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

LABELLER_OPENING = INSTRUCTIONS.split("{", 1)[0]
PHONE = "13912345678"
ADDRESS = "上海市浦东新区世纪大道100号"


@pytest.fixture
def demo_domain(db):  # type: ignore[no-untyped-def]
    call_command("load_demo", verbosity=0, stdout=open("/dev/null", "w"))  # noqa: SIM115


def is_labeller(request: dict[str, Any]) -> bool:
    messages = request.get("messages") or []
    return bool(messages) and str(messages[0]["content"]).startswith(LABELLER_OPENING)


def model(  # type: ignore[no-untyped-def]
    scripted_llm, labels: dict[str, str], reply: str = "I can help with that.", delay: float = 0
) -> None:
    """Label the texts in `labels` (others: none); answer every other request with `reply`."""

    def respond(request: dict[str, Any]) -> Script | None:
        if is_labeller(request):
            text = request["messages"][-1]["content"]
            return Script(tokens=[labels.get(text, "none")])
        return Script.words(reply, token_delay=delay)

    scripted_llm.responder = respond


def replies_requests(scripted_llm) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [r for r in scripted_llm.requests if not is_labeller(r)]


async def connect(conversation: Conversation, session_key: str):  # type: ignore[no-untyped-def]
    ws = communicator_for(conversation, session_key=session_key)
    connected, _ = await ws.connect()
    assert connected
    assert json.loads(await ws.receive_from())["type"] == "hello"
    return ws


def as_read(markdown: str) -> str:
    """A reply as the user reads it: Markdown escapes (139\\*\\*\\*\\*5678) rendered away."""
    return re.sub(r"\\(.)", r"\1", markdown)


async def say(ws, text: str) -> str:  # type: ignore[no-untyped-def]
    """Send a message; return the reply's text as the user reads it once it has streamed."""
    await ws.send_json_to({"type": "message.send", "text": text, "client_id": str(uuid.uuid4())})
    frames = await receive_until(ws, "message.done")
    assert frames[-1]["status"] == "complete", frames[-1]
    return as_read(
        "".join(token for f in frames if f["type"] == "message.delta" for token in f["tokens"])
    )


@database_sync_to_async
def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


@database_sync_to_async
def slot_values(conversation: Conversation) -> dict[str, str]:
    return {s.name: s.value for s in SlotValue.objects.filter(conversation=conversation)}


@database_sync_to_async
def turn_states(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        ConversationTransition.objects.filter(conversation=conversation).values_list(
            "from_state", "to_state"
        )
    )


async def test_an_order_in_chinese_is_asked_for_in_order_confirmed_and_completed(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    # given
    model(scripted_llm, {"我想点两份经典套餐": "order_meal"})
    ws = await connect(anon_conversation, anon_session.session_key)

    # when the user orders, then answers each question
    first = await say(ws, "我想点两份经典套餐")
    second = await say(ws, PHONE)
    third = await say(ws, ADDRESS)
    fourth = await say(ws, "对")
    await ws.disconnect()
    await wait_for_running_turns()

    # then meal and quantity came from the first message; the rest was asked for in order
    assert first == "请留一个联系电话，方便骑手联系您。"
    assert second == "请问送餐地址是哪里？"
    assert third.startswith("请确认：经典套餐 × 2，送到上海市浦东新***，电话139****5678")
    assert fourth.startswith("好的：经典套餐 × 2，送到上海市浦东新***")
    # one classification in all: answers to the bot's questions need none, and no model reply
    assert len(scripted_llm.requests) == 1 and is_labeller(scripted_llm.requests[0])
    assert await slot_values(anon_conversation) == {
        "meal": "classic",
        "quantity": "2",
        "phone": PHONE,
        "address": ADDRESS,
    }
    conversation = await fresh(anon_conversation)
    assert conversation.state == ConversationState.WAITING_INPUT
    assert conversation.intent == "order_meal" and conversation.context["done"] is True
    S = ConversationState
    assert (
        await turn_states(anon_conversation)
        == [
            (S.WAITING_INPUT, S.RECOGNIZING_INTENT),
            (S.RECOGNIZING_INTENT, S.WAITING_INPUT),
        ]
        * 4
    )


async def test_the_stored_conversation_holds_no_phone_number_or_address(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    model(scripted_llm, {"我要点餐": "order_meal"})
    ws = await connect(anon_conversation, anon_session.session_key)
    for text in ["我要点餐", "儿童套餐", "3", f"我的手机号是 {PHONE}", f"送到{ADDRESS}，谢谢"]:
        await say(ws, text)
    await ws.disconnect()
    await wait_for_running_turns()

    @database_sync_to_async
    def dump() -> str:
        with connection.cursor() as cursor:
            rows = []
            for table in ("conversations_message", "conversations_conversation"):
                cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
                rows += cursor.fetchall()
        return repr(rows)

    text = await dump()
    assert PHONE not in text and "世纪大道" not in text
    assert "139****5678" in text and "上海市浦东新***" in text
    assert (await slot_values(anon_conversation))["address"] == ADDRESS


async def test_corrections_overwrite_and_the_reply_acknowledges_them_in_chinese(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    model(scripted_llm, {"来一份双人套餐": "order_meal"})
    ws = await connect(anon_conversation, anon_session.session_key)
    await say(ws, "来一份双人套餐")
    await say(ws, "13800138000")

    # when the user corrects the phone number while being asked for the address
    reply = await say(ws, f"不对，手机号是 {PHONE}")

    # then the slot is overwritten, the reply says so and asks the same open question
    assert reply == "好的，手机号已改为139****5678。请问送餐地址是哪里？"
    assert (await slot_values(anon_conversation))["phone"] == PHONE

    # and a correction at the confirmation step is confirmed again
    await say(ws, ADDRESS)
    reply = await say(ws, "改成三份")
    assert reply.startswith("好的，份数已改为3。请确认：双人套餐 × 3")
    done = await say(ws, "没错")
    assert done.startswith("好的：双人套餐 × 3")
    await ws.disconnect()

    @database_sync_to_async
    def history() -> list[tuple[str, str, str]]:
        return list(SlotChange.objects.values_list("name", "old_masked", "new_masked"))

    changes = await history()
    assert ("phone", "138****8000", "139****5678") in changes
    assert ("quantity", "1", "3") in changes


async def test_corrections_in_english_and_a_no_at_the_confirmation(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    model(scripted_llm, {"I'd like one classic set please": "order_meal"})
    ws = await connect(anon_conversation, anon_session.session_key)
    assert await say(ws, "I'd like one classic set please") == (
        "What phone number can the courier reach you on?"
    )
    await say(ws, "+86 139 1234 5678")
    confirm = await say(ws, "12 Baker Street, London")
    assert confirm.startswith("Please confirm: 1 × Classic set")

    # when the user says no, then names the change
    assert await say(ws, "no") == "Sure, what would you like to change?"
    reply = await say(ws, "actually make it two")

    # then
    assert reply.startswith("OK, I've changed the quantity to 2. Please confirm: 2 × Classic set")
    assert (await slot_values(anon_conversation))["quantity"] == "2"
    assert (await say(ws, "yes")).startswith("Got it: 2 × Classic set")
    await ws.disconnect()


async def test_an_unclear_answer_is_asked_again_and_cancel_ends_the_task(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    model(scripted_llm, {"I want to order food": "order_meal"})
    ws = await connect(anon_conversation, anon_session.session_key)
    await say(ws, "I want to order food")
    reply = await say(ws, "hmm, what do you think?")
    assert reply == (
        "Sorry, I didn't catch that. Which set would you like: Classic set, Set for two or Kids set?"
    )
    assert (await fresh(anon_conversation)).context["awaiting"] == "meal"
    assert await say(ws, "never mind") == "OK, I've cancelled that. Anything else I can help with?"
    assert (await fresh(anon_conversation)).context.get("done") is True
    await ws.disconnect()


async def test_when_the_model_wanders_off_the_policy_still_asks_for_the_slot(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    # given an intent whose replies the model writes, and a model that says goodbye
    await database_sync_to_async(Intent.objects.filter(name="order_meal").update)(reply_mode="llm")
    # (slow enough that the first token is recorded before the reply ends: generating)
    model(scripted_llm, {"Order a kids set": "order_meal"}, "Goodbye, have a nice day!", delay=0.05)
    ws = await connect(anon_conversation, anon_session.session_key)

    # when
    reply = await say(ws, "Order a kids set")

    # then the policy's question ends the reply and the conversation waits for that slot
    assert reply == "Goodbye, have a nice day!\n\nHow many would you like?"
    assert (await fresh(anon_conversation)).context["awaiting"] == "quantity"
    system = replies_requests(scripted_llm)[-1]["messages"][0]["content"]
    assert "ask exactly this question" in system and "How many would you like?" in system

    # and once the phone is known, the model sees it in plaintext; the stored reply does not
    scripted_llm.requests.clear()
    model(scripted_llm, {}, reply=f"I will call {PHONE}. What is the delivery address?")
    await say(ws, "2")
    reply = await say(ws, PHONE)
    await ws.disconnect()
    await wait_for_running_turns()
    system = replies_requests(scripted_llm)[-1]["messages"][0]["content"]
    assert f"phone number: {PHONE}" in system
    assert reply.endswith("What is the delivery address?")  # it asked: nothing appended

    @database_sync_to_async
    def last_reply() -> str:
        return Message.objects.filter(role=MessageRole.ASSISTANT).order_by("-sequence")[0].text

    assert await last_reply() == r"I will call 139\*\*\*\*5678. What is the delivery address?"
    S = ConversationState
    assert (await turn_states(anon_conversation))[:4] == [
        (S.WAITING_INPUT, S.RECOGNIZING_INTENT),
        (S.RECOGNIZING_INTENT, S.CALLING_AI),
        (S.CALLING_AI, S.GENERATING),
        (S.GENERATING, S.WAITING_INPUT),
    ]


async def test_one_shot_intents_template_and_model_replies(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    model(
        scripted_llm,
        {"你好": "greeting", "what's the weather like": "out_of_scope"},
        reply="Sorry, I can only help with set meals and orders.",
    )
    ws = await connect(anon_conversation, anon_session.session_key)

    # a template intent: no model reply at all
    assert await say(ws, "你好") == "您好！我可以帮您点套餐或查询订单，请问需要什么帮助？"
    assert replies_requests(scripted_llm) == []

    # an LLM intent: the model writes, guided by the intent's template
    assert await say(ws, "what's the weather like") == (
        "Sorry, I can only help with set meals and orders."
    )
    system = replies_requests(scripted_llm)[0]["messages"][0]["content"]
    assert "Politely say that you can only help" in system
    await ws.disconnect()

    @database_sync_to_async
    def intents() -> list[str]:
        return list(
            Message.objects.filter(role=MessageRole.USER)
            .order_by("sequence")
            .values_list("intent", flat=True)
        )

    assert await intents() == ["greeting", "out_of_scope"]


async def test_when_the_labeller_fails_the_model_answers_freely(
    demo_domain, anon_conversation, anon_session, scripted_llm
):
    def respond(request: dict[str, Any]) -> Script | None:
        return Script(status=500) if is_labeller(request) else Script.words("Hello!")

    scripted_llm.responder = respond
    ws = await connect(anon_conversation, anon_session.session_key)
    assert await say(ws, "hello there") == "Hello!"
    await ws.disconnect()
    assert (await fresh(anon_conversation)).intent == ""
