"""POST /api/v1/nlu/parse: the chat's own reading of a text (classifier, then LLM), over the API.

A real ONNX classifier serves (the tiny TF-IDF model of nlu_fixtures, on the demo intents); the
scripted LLM server stands in for the model behind the labeller.
"""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.cache import cache
from django.core.management import call_command

from integrations.keys import api_key_revoke
from integrations.models import ApiKey
from nlu.classifier import serving
from nlu.models import ReviewItem
from nlu.tests.api_helpers import call, error_code
from nlu.tests.nlu_fixtures import serving_nlu_model
from testkit.scripted_llm import Script

# The serving registry reads rows from executor threads: committed data only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db) -> None:  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())


@pytest.fixture
def tiny_model(demo, settings, tmp_path):  # type: ignore[no-untyped-def]
    """The tiny real classifier (greeting, order_meal, goodbye, check_order) serving."""
    settings.NLU_MODEL_CHECK_SECONDS = 0
    settings.VAR_DIR = tmp_path
    serving.reset()
    model = serving_nlu_model()
    serving.serving_version_changed(model.pk)
    yield model
    serving.reset()
    cache.delete(serving.VERSION_KEY)


def unique(text: str) -> str:
    """The text and a fresh token, so no earlier run's cached prediction answers (shared Redis)."""
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_a_confident_classifier_names_the_intent_and_the_slots_without_the_llm(
    client, nlu_key, tiny_model, scripted_llm, settings
):
    # given a threshold the tiny model's answers reach (it learnt from six examples an intent)
    settings.NLU_CONFIDENCE_THRESHOLD = 0.3
    text = f"  I'd like two classic sets ({uuid.uuid4().hex[:8]}), call me on 139 1234 5678"

    # when
    response = call(client, "post", "/nlu/parse", nlu_key, {"text": text})

    # then the classifier decided, and the order's slots were read with offsets into the text
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["intent"]["name"] == "order_meal"
    assert body["intent"]["confidence"] == body["ranking"][0]["confidence"] >= 0.3
    assert [r["name"] for r in body["ranking"]][0] == "order_meal" and len(body["ranking"]) == 3
    assert (body["source"], body["model_version"], body["text"]) == ("model", tiny_model.pk, text)
    found = {e["entity"]: (e["value"], text[e["start"] : e["end"]]) for e in body["entities"]}
    assert found == {
        "quantity": ("2", "two"),
        "meal": ("classic", "classic sets"),
        "phone": ("13912345678", "139 1234 5678"),
    }
    assert [e["entity"] for e in body["entities"]] == ["quantity", "meal", "phone"]
    assert scripted_llm.requests == []


def test_the_same_text_again_is_answered_from_the_prediction_cache(
    client, nlu_key, tiny_model, settings
):
    settings.NLU_CONFIDENCE_THRESHOLD = 0.3
    text = unique("hello")
    first = call(client, "post", "/nlu/parse", nlu_key, {"text": text}).json()
    again = call(client, "post", "/nlu/parse", nlu_key, {"text": text}).json()
    assert (first["source"], again["source"]) == ("model", "cache")
    assert again["intent"] == first["intent"] and again["ranking"] == first["ranking"]


def test_an_unsure_classifier_lets_the_llm_decide_and_nothing_is_stored(
    client, nlu_key, tiny_model, scripted_llm, settings
):
    # given a threshold no prediction reaches, and an LLM that reads an order check
    settings.NLU_CONFIDENCE_THRESHOLD = 1.01
    scripted_llm.script = Script(tokens=["check_order"])

    # when
    response = call(client, "post", "/nlu/parse", nlu_key, {"text": unique("where's my food")})

    # then the LLM's label is the intent; the classifier's ranking and version are shown
    body = response.json()
    assert response.status_code == 200
    assert body["source"] == "llm" and body["intent"]["name"] == "check_order"
    assert body["model_version"] == tiny_model.pk and len(body["ranking"]) == 3
    ranked = dict((r["name"], r["confidence"]) for r in body["ranking"])
    assert body["intent"]["confidence"] == ranked.get("check_order")
    assert len(scripted_llm.requests) == 1
    # a parse is not a conversation: nothing goes to the review queue
    assert ReviewItem.objects.count() == 0


def test_without_a_classifier_the_llm_labels_alone(client, nlu_key, demo, scripted_llm):
    # given no model was ever promoted
    serving.reset()
    scripted_llm.script = Script(tokens=["greeting"])

    body = call(client, "post", "/nlu/parse", nlu_key, {"text": "hi!", "language": "en"}).json()

    assert body["intent"] == {"name": "greeting", "confidence": None}
    assert (body["source"], body["ranking"], body["model_version"]) == ("llm", [], None)


def test_none_of_the_intents_is_out_of_scope_and_no_intents_at_all_is_null(
    client, nlu_key, demo, scripted_llm
):
    serving.reset()
    scripted_llm.script = Script(tokens=["none"])
    body = call(client, "post", "/nlu/parse", nlu_key, {"text": "write me a poem"}).json()
    assert body["intent"]["name"] == "out_of_scope"

    from nlu.models import Intent

    Intent.objects.all().delete()
    body = call(client, "post", "/nlu/parse", nlu_key, {"text": "write me a poem"}).json()
    assert (body["intent"], body["source"], body["entities"]) == (None, "none", [])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "   "}, 400, "empty_message"),
        ({"text": ""}, 400, "empty_message"),
        ({"text": "x" * 11}, 400, "message_too_long"),
        ({"text": "nul\x00byte"}, 400, "validation_error"),
        ({"text": "lone \ud800 surrogate"}, 400, "validation_error"),
        ({"text": 12}, 400, "validation_error"),
        ({"text": ["hi"]}, 400, "validation_error"),
        ({}, 400, "validation_error"),
        ({"text": "hi", "language": "english please"}, 400, "validation_error"),
        (["hi"], 400, "validation_error"),
    ],
)
def test_bad_texts_are_refused_with_the_chats_codes(
    client, nlu_key, db, settings, body, status, code
):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    response = call(client, "post", "/nlu/parse", nlu_key, body)
    assert (response.status_code, error_code(response)) == (status, code)


def test_the_limit_counts_the_text_as_sent(client, nlu_key, demo, scripted_llm, settings):
    # as the schema's maxLength does, and as the chat's own check (one rule everywhere)
    scripted_llm.script = Script(tokens=["greeting"])
    settings.CHAT_MAX_MESSAGE_CHARS = 11
    response = call(client, "post", "/nlu/parse", nlu_key, {"text": "   hello   "})
    assert response.status_code == 200
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    response = call(client, "post", "/nlu/parse", nlu_key, {"text": "   hello   "})
    assert (response.status_code, error_code(response)) == (400, "message_too_long")


def test_malformed_json_is_a_400(client, nlu_key, db):
    response = call(client, "post", "/nlu/parse", nlu_key, raw='{"text": "hi"')
    assert (response.status_code, error_code(response)) == (400, "invalid_json")


def test_parse_needs_a_key_with_the_nlu_scope(client, nlu_key, admin_key, db):
    # no key at all
    response = call(client, "post", "/nlu/parse", None, {"text": "hi"})
    assert (response.status_code, error_code(response)) == (401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")

    # a key without the nlu scope
    response = call(client, "post", "/nlu/parse", admin_key, {"text": "hi"})
    assert (response.status_code, error_code(response)) == (403, "scope_missing")

    # an unknown key
    response = call(client, "post", "/nlu/parse", "chs_" + "x" * 43, {"text": "hi"})
    assert (response.status_code, error_code(response)) == (401, "api_key_invalid")


def test_a_revoked_key_is_refused_on_its_next_request(client, nlu_key, demo, scripted_llm):
    scripted_llm.script = Script(tokens=["greeting"])
    assert call(client, "post", "/nlu/parse", nlu_key, {"text": "hi"}).status_code == 200

    api_key_revoke(ApiKey.objects.get())

    response = call(client, "post", "/nlu/parse", nlu_key, {"text": "hi"})
    assert (response.status_code, error_code(response)) == (401, "api_key_revoked")


def test_the_schema_documents_parse_with_examples_and_errors(client, db):
    schema = client.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/nlu/parse"]["post"]
    assert operation["operationId"] == "nlu_parse"
    assert {"200", "400", "401", "403", "413", "429"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["examples"]
    assert operation["responses"]["200"]["content"]["application/json"]["examples"]
