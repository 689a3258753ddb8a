"""The served classifier in a conversation: sure → no LLM; unsure → the LLM and the review queue.

A real model: the demo domain's examples trained and promoted, served through onnxruntime.
"""

from __future__ import annotations

import io

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from conversations import turns
from conversations.models import Message, MessageRole
from conversations.tests.test_dialogue import connect, say
from nlu.classifier import serving
from nlu.models import ReviewItem
from nlu.training import nlu_model_promote, nlu_model_train
from testkit.scripted_llm import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


@pytest.fixture
def served_demo_model(db):  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())
    serving.reset()
    model = nlu_model_promote(nlu_model_train())
    yield model
    serving.reset()


@database_sync_to_async
def user_messages() -> list[Message]:
    return list(Message.objects.filter(role=MessageRole.USER).order_by("sequence"))


async def test_a_sure_classifier_needs_no_llm_and_each_message_records_how_it_was_read(
    served_demo_model, anon_conversation, anon_session, scripted_llm
):
    ws = await connect(anon_conversation, anon_session.session_key)
    assert await say(ws, "来两份经典套餐") == "请留一个联系电话，方便骑手联系您。"
    assert await say(ws, "13912345678") == "请问送餐地址是哪里？"
    await ws.disconnect()

    # no model call at all: the classifier placed the order, the dialogue placed the answer
    assert scripted_llm.requests == []
    first, second = await user_messages()
    assert (first.intent, first.intent_source) == ("order_meal", "model")
    assert first.intent_scores[0][0] == "order_meal" and first.intent_scores[0][1] >= 0.7
    assert len(first.intent_scores) == 3 and first.nlu_ms is not None
    assert (second.intent, second.intent_source) == ("order_meal", "dialogue")
    assert second.intent_scores  # the classifier's view is kept even when unused


async def test_an_unsure_classifier_hands_over_to_the_llm_and_queues_the_masked_text(
    served_demo_model, anon_conversation, anon_session, scripted_llm, settings
):
    # given a threshold no prediction reaches, and an LLM that reads an order check
    settings.NLU_CONFIDENCE_THRESHOLD = 1.01
    scripted_llm.script = Script(tokens=["check_order"])
    ws = await connect(anon_conversation, anon_session.session_key)

    # when
    reply = await say(ws, "我用13912345678下的单呢")
    await ws.disconnect()

    # then the LLM's label is acted on, and staff get the sentence to review, masked
    assert reply == "请提供订单号，或下单时使用的手机号。"
    (message,) = await user_messages()
    assert (message.intent, message.intent_source) == ("check_order", "llm")
    item = await ReviewItem.objects.aget()
    assert item.text == "我用139****5678下的单呢" and item.suggested_intent == "check_order"
    assert item.nlu_model_id == served_demo_model.pk


async def test_a_failing_classifier_does_not_stop_the_conversation(
    served_demo_model, anon_conversation, anon_session, scripted_llm, monkeypatch
):
    async def broken(text: str) -> None:
        raise RuntimeError("onnxruntime fell over")

    monkeypatch.setattr(turns, "classify", broken)
    scripted_llm.script = Script(tokens=["greeting"])
    ws = await connect(anon_conversation, anon_session.session_key)
    assert await say(ws, "hello") == (
        "Hello! I can help you order a set meal or check an order. What would you like?"
    )
    await ws.disconnect()
    (message,) = await user_messages()
    assert message.intent_source == "llm"


def test_relabelling_runs_in_batches_and_stores_the_serving_models_scores(
    served_demo_model, anon_conversation, admin_client, eager_celery
):
    # given stored user messages the classifier never saw
    for sequence, text in enumerate(["where is my order", "hello", "给我来个套餐"], start=1):
        Message.objects.create(
            conversation=anon_conversation, sequence=sequence, role=MessageRole.USER, text=text
        )

    # when staff re-label the conversation (eager Celery here; the nlu queue with a broker)
    response = admin_client.post(
        "/admin/conversations/conversation/",
        {"action": "relabel", "_selected_action": [anon_conversation.pk]},
        follow=True,
    )

    # then each message carries the serving model's top intents
    assert "Re-labelling 3 messages in 1 batches" in response.content.decode()
    tops = [m.intent_scores[0][0] for m in Message.objects.order_by("sequence")]
    assert tops == ["check_order", "greeting", "order_meal"]
