"""Intents and their examples over the API (scope admin-data): the admin's rules, idempotent adds."""

from __future__ import annotations

from base64 import b64encode
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model

from integrations.keys import api_key_revoke
from integrations.models import ApiKey
from nlu.models import Intent, IntentExample, ReplyMode, SlotDefinition
from nlu.tests.api_helpers import call, error_code, follow_pages

pytestmark = pytest.mark.django_db

MEAL = {
    "name": "meal",
    "slot_type": "choice",
    "choices": [
        {"value": "classic", "en": "Classic set", "zh": "经典套餐"},
        {"value": "kids", "en": "Kids' meal", "zh": "儿童餐"},
    ],
    "is_personal_data": False,
    "prompt_en": "Which set?",
    "prompt_zh": "哪种套餐？",
}
ORDER = {
    "name": "order_meal",
    "display_name": "Order a meal",
    "description": "The user wants food delivered",
    "reply_mode": "template",
    "response_template_en": "One {meal} is on its way.",
    "response_template_zh": "{meal}马上送到。",
    "slots": [MEAL],
}


@pytest.fixture
def order_meal(admin_key, client) -> Intent:
    response = call(client, "post", "/intents", admin_key, ORDER)
    assert response.status_code == 201, response.content
    return Intent.objects.get(name="order_meal")


def llm_intent(name: str) -> Intent:
    return Intent.objects.create(name=name, reply_mode=ReplyMode.LLM)


# --- intents ------------------------------------------------------------------------------------


def test_an_intent_is_created_with_its_slots_and_read_back(client, admin_key):
    # when
    response = call(client, "post", "/intents", admin_key, ORDER)

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (
        body["name"] == "order_meal" and body["response_template_en"] == "One {meal} is on its way."
    )
    assert body["active"] is True and body["example_count"] == 0
    (slot,) = body["slots"]
    assert slot["choices"] == MEAL["choices"] and slot["order"] == 10 and slot["required"] is True
    assert call(client, "get", "/intents/order_meal", admin_key).json() == body
    stored = SlotDefinition.objects.get()
    assert (stored.intent.name, stored.slot_type, stored.is_personal_data) == (
        "order_meal",
        "choice",
        False,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # the admin's slot formset refuses a placeholder that names no slot
        ({"response_template_en": "One {colour} meal."}, "response_template_en"),
        ({"confirm_template_zh": "{meal}，{address}，对吗？"}, "confirm_template_zh"),
        # Intent.clean: malformed templates; a template reply needs both languages
        ({"response_template_en": "Lone { brace"}, "response_template_en"),
        ({"response_template_zh": ""}, "response_template_zh"),
        # the name rules, and SlotDefinition.clean
        ({"name": "Order Meal"}, "name"),
        ({"slots": [{**MEAL, "choices": []}]}, "slots[0].choices"),
        ({"slots": [{**MEAL, "prompt_zh": ""}]}, "slots[0].prompt_zh"),
        ({"slots": [{"name": "phone", "slot_type": "phone", "is_personal_data": False}]}, None),
        ({"slots": [MEAL, MEAL]}, "slots[1].name"),
    ],
)
def test_an_invalid_intent_is_refused_by_field_and_nothing_is_written(
    client, admin_key, change, field
):
    response = call(client, "post", "/intents", admin_key, {**ORDER, **change})
    assert (response.status_code, error_code(response)) == (400, "validation_error")
    fields = response.json()["detail"]["fields"]
    if field is not None:
        assert field in fields, fields
    assert not Intent.objects.exists() and not SlotDefinition.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {**ORDER, "active": "yes"},
        {**ORDER, "name": 12},
        {**ORDER, "slots": [{**MEAL, "order": "10"}]},
        {**ORDER, "slots": [{**MEAL, "order": 10**20}]},
        {**ORDER, "slots": [{**MEAL, "required": 1}]},
        {**ORDER, "description": "nul\x00"},
        {**ORDER, "reply_mode": "poem"},
        {**ORDER, "slots": {"name": "meal"}},
        ["order_meal"],
        "order_meal",
    ],
)
def test_wrong_json_types_nul_and_huge_numbers_are_a_400(client, admin_key, body):
    response = call(client, "post", "/intents", admin_key, body)
    assert (response.status_code, error_code(response)) == (400, "validation_error")


def test_an_intent_name_is_unique(client, admin_key, order_meal):
    response = call(client, "post", "/intents", admin_key, ORDER)
    assert (response.status_code, error_code(response)) == (409, "intent_exists")

    # renaming onto a taken name too
    llm_intent("greeting")
    response = call(client, "patch", "/intents/greeting", admin_key, {"name": "order_meal"})
    assert (response.status_code, error_code(response)) == (409, "intent_exists")
    assert Intent.objects.filter(name="greeting").exists()


def test_a_retried_create_returns_the_first_response_and_creates_one_intent(client, admin_key):
    first = call(client, "post", "/intents", admin_key, ORDER, idempotency_key="create-1")
    retry = call(client, "post", "/intents", admin_key, ORDER, idempotency_key="create-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Intent.objects.count() == 1

    # the same key with another body is a client bug
    other = {**ORDER, "name": "order_drink"}
    response = call(client, "post", "/intents", admin_key, other, idempotency_key="create-1")
    assert (response.status_code, error_code(response)) == (422, "idempotency_key_reused")
    assert Intent.objects.count() == 1


def test_a_patch_changes_the_given_fields_only(client, admin_key, order_meal):
    response = call(
        client, "patch", "/intents/order_meal", admin_key, {"reply_mode": "llm", "active": False}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["reply_mode"], body["active"]) == ("llm", False)
    assert body["description"] == ORDER["description"] and len(body["slots"]) == 1


def test_patched_slots_are_the_whole_new_list(client, admin_key, order_meal):
    # given the template no longer names the meal
    quantity = {
        "name": "quantity",
        "slot_type": "number",
        "is_personal_data": False,
        "prompt_en": "How many?",
        "prompt_zh": "几份？",
    }
    body = {
        "response_template_en": "{quantity} meals are on their way.",
        "response_template_zh": "{quantity}份马上送到。",
        "slots": [quantity, {**MEAL, "required": False, "prompt_en": "Any set?"}],
    }

    # when
    response = call(client, "patch", "/intents/order_meal", admin_key, body)

    # then quantity is added first, meal updated in place, in the order listed
    assert response.status_code == 200, response.content
    slots = response.json()["slots"]
    assert [(s["name"], s["order"]) for s in slots] == [("quantity", 10), ("meal", 20)]
    meal = SlotDefinition.objects.get(name="meal")
    assert (meal.required, meal.prompt_en) == (False, "Any set?")

    # and a list without the meal deletes it
    response = call(client, "patch", "/intents/order_meal", admin_key, {"slots": [quantity]})
    assert [s["name"] for s in response.json()["slots"]] == ["quantity"]
    assert not SlotDefinition.objects.filter(name="meal").exists()


def test_deleting_a_slot_the_template_uses_is_refused(client, admin_key, order_meal):
    response = call(client, "patch", "/intents/order_meal", admin_key, {"slots": []})
    assert response.status_code == 400
    assert "response_template_en" in response.json()["detail"]["fields"]
    assert SlotDefinition.objects.filter(name="meal").exists()


def test_an_intent_can_be_renamed_and_deleted(client, admin_key, order_meal):
    response = call(client, "patch", "/intents/order_meal", admin_key, {"name": "order_food"})
    assert response.json()["name"] == "order_food"
    assert call(client, "get", "/intents/order_meal", admin_key).status_code == 404

    response = call(client, "delete", "/intents/order_food", admin_key)
    assert response.status_code == 204 and response.content == b""
    assert not Intent.objects.exists() and not SlotDefinition.objects.exists()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/intents/order_pizza", "intent_not_found"),
        ("/intents/Order_Meal", "not_found"),  # not a name at all: no view matches
        ("/intents/order%00meal", "not_found"),
        ("/intents/" + "a" * 101, "not_found"),
    ],
)
def test_an_unknown_or_malformed_intent_name_is_a_404(client, admin_key, path, code):
    for method in ("get", "patch", "delete"):
        response = call(client, method, path, admin_key, {})
        assert (response.status_code, error_code(response)) == (404, code)


def test_intents_are_listed_by_name_a_page_at_a_time(
    client, admin_key, django_assert_max_num_queries
):
    # given five intents, one with a slot and examples
    for name in ("delta", "alpha", "echo", "charlie", "bravo"):
        llm_intent(name)
    Intent.objects.get(name="alpha").examples.create(text="hi")
    Intent.objects.get(name="alpha").slots.create(name="x", required=False, is_personal_data=False)

    # when
    with django_assert_max_num_queries(6):
        first = call(client, "get", "/intents?limit=2", admin_key)
    pages = follow_pages(client, "/intents", admin_key, limit=2)

    # then
    assert [[i["name"] for i in page] for page in pages] == [
        ["alpha", "bravo"],
        ["charlie", "delta"],
        ["echo"],
    ]
    alpha = first.json()["results"][0]
    assert (alpha["example_count"], [s["name"] for s in alpha["slots"]]) == (1, ["x"])


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "limit=-1", "limit=5_0"])
def test_a_bad_limit_is_an_invalid_parameter(client, admin_key, query):
    response = call(client, "get", f"/intents?{query}", admin_key)
    assert (response.status_code, error_code(response)) == (400, "invalid_parameter")


@pytest.mark.parametrize(
    ("position", "by_name", "by_id"),
    [
        (None, 404, 404),  # not a cursor at all
        ("p=abc", 200, 404),  # a fine name, not an id
        ("p=%00", 404, 404),  # a NUL, which PostgreSQL refuses
        ("p=" + "9" * 30, 200, 404),  # past any integer column
    ],
)
def test_a_forged_cursor_is_a_404_not_a_crash(client, admin_key, position, by_name, by_id):
    # cursors are base64 of a query string (DRF's CursorPagination)
    cursor = quote(b64encode(position.encode()).decode()) if position else "nonsense"
    llm_intent("alpha").examples.create(text="hi")
    for path, status in (("/intents", by_name), ("/intents/alpha/examples", by_id)):
        response = call(client, "get", f"{path}?cursor={cursor}", admin_key)
        assert response.status_code == status, (path, response.content)
        if status == 404:
            assert error_code(response) == "not_found"


def test_intents_need_the_admin_data_scope(client, nlu_key, chat_key, order_meal):
    assert call(client, "get", "/intents", None).status_code == 401
    for key in (nlu_key, chat_key):
        for method, path in [
            ("get", "/intents"),
            ("post", "/intents"),
            ("get", "/intents/order_meal"),
            ("patch", "/intents/order_meal"),
            ("delete", "/intents/order_meal"),
            ("get", "/intents/order_meal/examples"),
            ("post", "/intents/order_meal/examples"),
            ("delete", "/intents/order_meal/examples/1"),
        ]:
            response = call(client, method, path, key, {"text": "hi"})
            assert (response.status_code, error_code(response)) == (403, "scope_missing"), path
    assert Intent.objects.count() == 1 and not IntentExample.objects.exists()


def test_a_revoked_admin_key_is_refused_on_its_next_request(client, admin_key, order_meal):
    assert call(client, "get", "/intents", admin_key).status_code == 200
    api_key_revoke(ApiKey.objects.get())
    response = call(client, "get", "/intents", admin_key)
    assert (response.status_code, error_code(response)) == (401, "api_key_revoked")


def test_staff_may_use_the_browsable_api_with_their_session_and_others_may_not(
    client, bob, order_meal
):
    staff = get_user_model().objects.create_user("staff", "s@example.com", "pw", is_staff=True)
    client.force_login(bob)
    response = call(client, "get", "/intents")
    assert (response.status_code, error_code(response)) == (403, "staff_only")

    client.force_login(staff)
    response = call(client, "get", "/intents")
    assert response.status_code == 200 and response.json()["results"][0]["name"] == "order_meal"


# --- examples -----------------------------------------------------------------------------------


def test_one_example_is_added_and_again_is_a_duplicate(client, admin_key, order_meal):
    response = call(client, "post", "/intents/order_meal/examples", admin_key, {"text": "food!"})
    assert response.status_code == 201
    assert response.json() == {"added": 1, "duplicates": 0, "invalid": [], "notes": []}

    response = call(client, "post", "/intents/order_meal/examples", admin_key, {"text": " food! "})
    assert response.status_code == 200
    assert response.json() == {"added": 0, "duplicates": 1, "invalid": [], "notes": []}
    assert list(order_meal.examples.values_list("text", flat=True)) == ["food!"]


def test_a_list_is_cleaned_as_the_importer_cleans_it(client, admin_key, order_meal):
    # given
    order_meal.examples.create(text="stored already")
    body = [
        {
            "text": "  two classic sets please",
            "entities": [
                {"start": 6, "end": 13, "entity": "meal", "value": "classic"},
                {"start": 2, "end": 5, "entity": "quantity"},
            ],
        },
        {"text": "stored already"},
        {"text": "two classic sets please"},  # repeated in the list (after stripping)
        {"text": "   "},
        {"text": "x" * 501},
        {"text": "two\nlines"},
        {"text": "bell\x07"},
        {"text": "I'd like a pizza"},
    ]

    # when
    response = call(client, "post", "/intents/order_meal/examples", admin_key, body)

    # then
    assert response.status_code == 201, response.content
    report = response.json()
    assert (report["added"], report["duplicates"]) == (2, 2)
    assert [(i["index"], i["reason"]) for i in report["invalid"]] == [
        (3, "the text is empty"),
        (4, "the text is longer than 500 characters (501)"),
        (5, "the text spans several lines"),
        (6, "the text contains control characters"),
    ]
    example = order_meal.examples.get(text="two classic sets please")
    # entity offsets follow the stripped text
    assert example.entities == [
        {"start": 0, "end": 3, "entity": "quantity", "value": "two"},
        {"start": 4, "end": 11, "entity": "meal", "value": "classic"},
    ]
    listed = call(client, "get", "/intents/order_meal/examples", admin_key).json()["results"]
    assert [e["text"] for e in listed] == [
        "stored already",
        "two classic sets please",
        "I'd like a pizza",
    ]
    assert listed[1]["entities"][1]["value"] == "classic"


@pytest.mark.parametrize(
    "body",
    [
        [],
        [{"text": "hi"}] * 501,
        {"text": "hi", "entities": [{"start": 0, "end": 2.0, "entity": "x"}]},
        {"text": "hi", "entities": [{"start": -1, "end": 2, "entity": "x"}]},
        {"text": "hi", "entities": [{"start": 0, "end": 2, "entity": ""}]},
        {"text": "hi", "entities": {"start": 0, "end": 2, "entity": "x"}},
        {"text": "nul\x00"},
        {"text": 5},
        {"texts": ["hi"]},
        [{"text": "fine"}, {"text": None}],
    ],
)
def test_malformed_examples_are_refused_whole(client, admin_key, order_meal, body):
    response = call(client, "post", "/intents/order_meal/examples", admin_key, body)
    assert (response.status_code, error_code(response)) == (400, "validation_error")
    assert not IntentExample.objects.exists()


@pytest.mark.parametrize(
    "entity",
    [
        {"start": 0, "end": 9, "entity": "meal"},  # past the end
        {"start": 2, "end": 2, "entity": "meal"},  # empty
        {"start": 0, "end": 10**30, "entity": "meal"},
    ],
)
def test_entities_that_do_not_fit_are_left_out_as_the_importer_does(
    client, admin_key, order_meal, entity
):
    body = [{"text": "hi"}, {"text": "food", "entities": [entity]}]
    response = call(client, "post", "/intents/order_meal/examples", admin_key, body)
    assert response.status_code == 201
    report = response.json()
    assert report["added"] == 2 and len(report["notes"]) == 1
    assert report["notes"][0].startswith("Item 1: the entities do not fit the text")
    assert order_meal.examples.get(text="food").entities == []


def test_examples_of_an_unknown_intent_are_a_404(client, admin_key, db):
    response = call(client, "post", "/intents/nope/examples", admin_key, {"text": "hi"})
    assert (response.status_code, error_code(response)) == (404, "intent_not_found")
    response = call(client, "get", "/intents/nope/examples", admin_key)
    assert (response.status_code, error_code(response)) == (404, "intent_not_found")


def test_a_retried_add_returns_the_first_report_and_adds_once(client, admin_key, order_meal):
    body = [{"text": "food please"}, {"text": "hungry"}]
    path = "/intents/order_meal/examples"
    first = call(client, "post", path, admin_key, body, idempotency_key="add-1")
    retry = call(client, "post", path, admin_key, body, idempotency_key="add-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json() == {"added": 2, "duplicates": 0, "invalid": [], "notes": []}
    assert IntentExample.objects.count() == 2

    response = call(client, "post", path, admin_key, [{"text": "other"}], idempotency_key="add-1")
    assert (response.status_code, error_code(response)) == (422, "idempotency_key_reused")
    assert IntentExample.objects.count() == 2


def test_examples_are_listed_oldest_first_a_page_at_a_time(client, admin_key, order_meal):
    for i in range(5):
        order_meal.examples.create(text=f"example {i}")
    pages = follow_pages(client, "/intents/order_meal/examples", admin_key, limit=2)
    assert [[e["text"] for e in page] for page in pages] == [
        ["example 0", "example 1"],
        ["example 2", "example 3"],
        ["example 4"],
    ]


def test_an_example_is_deleted_only_through_its_own_intent(client, admin_key, order_meal):
    example = order_meal.examples.create(text="food")
    other = llm_intent("greeting")

    # through another intent: not found
    response = call(client, "delete", f"/intents/greeting/examples/{example.pk}", admin_key)
    assert (response.status_code, error_code(response)) == (404, "intent_example_not_found")
    assert other.examples.count() == 0 and IntentExample.objects.count() == 1

    response = call(client, "delete", f"/intents/order_meal/examples/{example.pk}", admin_key)
    assert response.status_code == 204
    assert not IntentExample.objects.exists()

    # again, or an id out of any integer range
    for example_id in (example.pk, 10**30):
        path = f"/intents/order_meal/examples/{example_id}"
        response = call(client, "delete", path, admin_key)
        assert (response.status_code, error_code(response)) == (404, "intent_example_not_found")
