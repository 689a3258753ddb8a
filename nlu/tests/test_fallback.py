"""The few-shot LLM labeller against the scripted OpenAI-compatible server."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from nlu.fallback import NONE_LABEL, classifier_prompt, classify_with_llm, parse_label
from nlu.selectors import intent_list_for_labelling
from testkit.scripted_llm import Script

pytestmark = pytest.mark.django_db(transaction=True)

NAMES = ["greeting", "goodbye", "order_meal", "check_order", "out_of_scope"]


@pytest.fixture
def intents(db):  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return intent_list_for_labelling()


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("order_meal", "order_meal"),
        ("Intent: check_order.", "check_order"),
        ('{"intent": "greeting"}', "greeting"),
        ("ORDER_MEAL", "order_meal"),
        (NONE_LABEL, None),
        ("I am not sure", None),
        ("reorder_meal", None),  # a name inside another word is not that name
        ("goodbye, or maybe greeting", "goodbye"),  # the first one named
    ],
)
def test_the_label_is_read_from_a_decorated_answer(answer, label):
    assert parse_label(answer, NAMES) == label


def test_the_prompt_describes_every_intent_then_shows_examples_as_turns(intents):
    prompt = classifier_prompt("我要点餐", intents)
    system = prompt[0]["content"]
    assert all(f"- {name}:" in system for name in NAMES)
    assert prompt[-1] == {"role": "user", "content": "我要点餐"}
    shots = prompt[1:-1]
    assert [m["role"] for m in shots[:2]] == ["user", "assistant"]
    assert {m["content"] for m in shots if m["role"] == "assistant"} == set(NAMES)
    assert {"role": "user", "content": "来两份经典套餐"} in shots


async def test_a_label_is_asked_once_then_cached(intents, scripted_llm):
    scripted_llm.script = Script(tokens=["order", "_meal"])
    assert await classify_with_llm("I'd like two classic sets", intents) == "order_meal"
    assert await classify_with_llm("  i'd like two classic sets ", intents) == "order_meal"
    assert len(scripted_llm.requests) == 1
    request = scripted_llm.requests[0]
    assert request["temperature"] == 0.0 and request["max_tokens"] == 16


async def test_a_failing_model_gives_no_label_and_is_asked_again_next_time(intents, scripted_llm):
    scripted_llm.script = Script(status=503)
    assert await classify_with_llm("hello", intents) is None
    scripted_llm.script = Script(tokens=["greeting"])
    assert await classify_with_llm("hello", intents) == "greeting"
    assert len(scripted_llm.requests) == 2


async def test_no_intents_means_no_model_call(scripted_llm):
    assert await classify_with_llm("hello", []) is None
    assert scripted_llm.requests == []
