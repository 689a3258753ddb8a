"""Recognition: the classifier when it is sure, the LLM when it is not, the review queue."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from django.core.management import call_command

from nlu.fallback import INSTRUCTIONS
from nlu.models import ReviewItem
from nlu.recognize import recognize
from nlu.selectors import intent_list_active
from testkit.scripted_llm import Script

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Classified:
    """What nlu.predict.classify returns, as far as recognition reads it."""

    top: list[tuple[str, float]]
    source: str = "model"
    model_version: int | None = None
    elapsed_ms: float = 1.0


@pytest.fixture
def intents(db):  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())
    return list(intent_list_active())


def labeller_answers(scripted_llm, answer: str) -> None:  # type: ignore[no-untyped-def]
    scripted_llm.script = Script(tokens=[answer])


async def test_a_confident_classifier_decides_without_the_llm(intents, scripted_llm):
    classified = Classified([("order_meal", 0.93), ("check_order", 0.04), ("greeting", 0.01)])
    result = await recognize("来两份套餐", intents, classified=classified, review_text="来两份套餐")
    assert (result.intent, result.source, result.confidence) == ("order_meal", "model", 0.93)
    assert scripted_llm.requests == []
    assert await ReviewItem.objects.acount() == 0


async def test_an_unsure_classifier_asks_the_llm_with_its_candidates_and_queues_a_review(
    intents, scripted_llm
):
    labeller_answers(scripted_llm, "check_order")
    classified = Classified([("order_meal", 0.41), ("check_order", 0.38), ("goodbye", 0.1)])

    result = await recognize(
        "我的饭呢 139****5678", intents, classified=classified, review_text="我的饭呢 139****5678"
    )

    assert (result.intent, result.source) == ("check_order", "llm")
    shots = [m["content"] for m in scripted_llm.requests[0]["messages"] if m["role"] == "assistant"]
    assert "check_order" in shots and "order_meal" in shots
    item = await ReviewItem.objects.aget()
    assert item.suggested_intent == "check_order" and item.model_intent == "order_meal"
    assert item.text == "我的饭呢 139****5678"


async def test_an_llm_answer_naming_no_intent_leaves_the_classifier_top_standing(
    intents, scripted_llm
):
    labeller_answers(scripted_llm, "I think it is about food")
    classified = Classified([("order_meal", 0.5), ("check_order", 0.3), ("goodbye", 0.1)])
    result = await recognize("food?", intents, classified=classified, review_text="food?")
    assert (result.intent, result.source) == ("order_meal", "model")
    assert (await ReviewItem.objects.aget()).suggested_intent == ""


async def test_none_of_these_means_out_of_scope(intents, scripted_llm):
    labeller_answers(scripted_llm, "none")
    assert (await recognize("写首诗", intents)).intent == "out_of_scope"


async def test_without_a_classifier_the_llm_labels_and_nothing_is_queued(intents, scripted_llm):
    labeller_answers(scripted_llm, "greeting")
    result = await recognize("yo", intents, classified=None, review_text="yo")
    assert (result.intent, result.source, result.top) == ("greeting", "llm", [])
    assert scripted_llm.requests[0]["messages"][0]["content"].startswith(
        INSTRUCTIONS.split("{", 1)[0]
    )
    assert await ReviewItem.objects.acount() == 0
