"""Intents and slots: validation, template replies, missing slots, the demo loader, the admin."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from nlu.exceptions import TemplateMissing, TemplateSlotMissing
from nlu.models import Intent, ReplyMode, SlotDefinition, SlotType
from nlu.selectors import intent_get_active, intent_list_active
from nlu.services import missing_slots, render_template

MEALS = [
    {"value": "classic", "en": "Classic set", "zh": "经典套餐"},
    {"value": "for_two", "en": "Set for two", "zh": "双人套餐"},
]


def slot(**fields) -> SlotDefinition:
    base = {"name": "x", "slot_type": SlotType.TEXT, "prompt_en": "?", "prompt_zh": "？"}
    return SlotDefinition(intent=Intent(name="i"), **{**base, **fields})


def clean_errors(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        obj.full_clean(exclude=["intent"], validate_unique=False, validate_constraints=False)
    return exc.value.message_dict


@pytest.fixture
def order_meal(db) -> Intent:
    intent = Intent.objects.create(
        name="order_meal",
        reply_mode=ReplyMode.TEMPLATE,
        response_template_en="{quantity} × {meal} to {address}{note}. {{ok}}",
        response_template_zh="{meal} × {quantity}，送到{address}{note}。",
    )
    # Created out of order on purpose: missing_slots must follow `order`, not the pk.
    intent.slots.create(
        name="address", slot_type="address", order=40, prompt_en="?", prompt_zh="？"
    )
    intent.slots.create(
        name="meal",
        slot_type="choice",
        choices=MEALS,
        order=10,
        is_personal_data=False,
        prompt_en="?",
        prompt_zh="？",
    )
    intent.slots.create(name="note", required=False, order=50, is_personal_data=False)
    intent.slots.create(
        name="quantity",
        slot_type="number",
        order=20,
        is_personal_data=False,
        prompt_en="?",
        prompt_zh="？",
    )
    return intent


# --- model validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "choices",
    [
        [],
        [{"value": "a"}],
        [{"value": "A b", "en": "x", "zh": "y"}],
        [MEALS[0], MEALS[0]],
        ["classic"],
    ],
)
def test_a_choice_slot_needs_well_formed_choices(choices):
    # given a choice slot with an empty or malformed list
    obj = slot(slot_type=SlotType.CHOICE, choices=choices, is_personal_data=False)
    # when / then
    assert "choices" in clean_errors(obj)


def test_only_choice_slots_have_choices():
    errors = clean_errors(slot(slot_type=SlotType.NUMBER, choices=MEALS, is_personal_data=False))
    assert "Only choice slots" in errors["choices"][0]


def test_a_well_formed_choice_slot_is_accepted():
    slot(slot_type=SlotType.CHOICE, choices=MEALS, is_personal_data=False).full_clean(
        exclude=["intent"]
    )


@pytest.mark.parametrize("kind", [SlotType.PHONE, SlotType.EMAIL, SlotType.ADDRESS])
def test_personal_kinds_must_keep_the_personal_data_flag(kind):
    errors = clean_errors(slot(slot_type=kind, is_personal_data=False))
    assert "encrypted" in errors["is_personal_data"][0]


def test_slots_are_personal_data_unless_staff_say_otherwise():
    assert SlotDefinition().is_personal_data is True


def test_a_required_slot_needs_its_question_in_both_languages():
    errors = clean_errors(slot(prompt_zh=""))
    assert list(errors) == ["prompt_zh"]


def test_slot_names_are_unique_per_intent(order_meal):
    duplicate = SlotDefinition(intent=order_meal, name="meal", prompt_en="?", prompt_zh="？")
    with pytest.raises(ValidationError):
        duplicate.full_clean()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hi {", "Lone '{'"),
        ("Hi }", "Lone '}'"),
        ("{meal.__class__}", "not a placeholder"),
        ("{}", "not a placeholder"),
    ],
)
def test_malformed_templates_are_refused(template, message):
    intent = Intent(name="greeting", response_template_en=template, response_template_zh="你好")
    assert message in clean_errors(intent)["response_template_en"][0]


def test_a_template_reply_needs_both_templates_but_a_model_reply_does_not():
    assert "response_template_zh" in clean_errors(Intent(name="g", response_template_en="Hi"))
    Intent(name="g", reply_mode=ReplyMode.LLM).full_clean(validate_unique=False)


# --- template placeholders against the slots (the admin form and domain_load) ---------------


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def intent_post_data(template_en: str, slots: list[dict], *, initial: int = 0) -> dict:
    data = {
        "name": "order_meal",
        "display_name": "",
        "description": "",
        "active": "on",
        "reply_mode": "template",
        "response_template_en": template_en,
        "response_template_zh": "好的",
        "slots-TOTAL_FORMS": str(len(slots)),
        "slots-INITIAL_FORMS": str(initial),
        "slots-MIN_NUM_FORMS": "0",
        "slots-MAX_NUM_FORMS": "1000",
        "examples-TOTAL_FORMS": "0",
        "examples-INITIAL_FORMS": "0",
        "examples-MIN_NUM_FORMS": "0",
        "examples-MAX_NUM_FORMS": "1000",
    }
    for i, s in enumerate(slots):
        for key, value in {
            "order": "10",
            "slot_type": "text",
            "choices": "[]",
            "prompt_en": "?",
            "prompt_zh": "？",
            "required": "on",
            "is_personal_data": "on",
            **s,
        }.items():
            data[f"slots-{i}-{key}"] = value
    return data


def test_an_unknown_template_placeholder_is_refused_in_the_admin(staff_client):
    # given a template that names a slot the intent does not have
    data = intent_post_data("{quantity} × {meal}", [{"name": "meal"}])
    # when staff save it
    response = staff_client.post(reverse("admin:nlu_intent_add"), data)
    # then nothing is saved and the error names the placeholder
    assert response.status_code == 200
    assert not Intent.objects.exists()
    assert "{quantity}: no slot of this intent has that name" in response.content.decode()


def test_slots_added_with_the_template_in_one_save_are_accepted(staff_client):
    data = intent_post_data("{quantity} × {meal}", [{"name": "meal"}, {"name": "quantity"}])
    response = staff_client.post(reverse("admin:nlu_intent_add"), data)
    assert response.status_code == 302
    assert list(Intent.objects.get().slots.values_list("name", flat=True)) == ["meal", "quantity"]


def test_deleting_a_slot_the_template_uses_is_refused(staff_client, order_meal):
    # given the change form with the "meal" slot ticked for deletion
    slots = [
        {
            "id": str(s.pk),
            "intent": str(order_meal.pk),
            "name": s.name,
            "slot_type": s.slot_type,
            "choices": json.dumps(s.choices),
            "order": str(s.order),
            **({"DELETE": "on"} if s.name == "meal" else {}),
        }
        for s in order_meal.slots.all()
    ]
    data = intent_post_data("{meal}", slots, initial=len(slots))
    # when staff save
    response = staff_client.post(reverse("admin:nlu_intent_change", args=[order_meal.pk]), data)
    # then the slot is still there
    assert response.status_code == 200
    assert "{meal}: no slot of this intent has that name" in response.content.decode()
    assert order_meal.slots.filter(name="meal").exists()


# --- render_template and missing_slots ------------------------------------------------------


def test_render_template_in_english_shows_choice_labels(order_meal):
    values = {"meal": "classic", "quantity": "2", "address": "1 High St"}
    assert (
        render_template(order_meal, values, language="en") == "2 × Classic set to 1 High St. {ok}"
    )


@pytest.mark.parametrize("language", ["zh", "zh-hans", "ZH-Hant"])
def test_render_template_in_chinese(order_meal, language):
    values = {"meal": "for_two", "quantity": "1", "address": "南京路1号", "note": "（放门口）"}
    assert (
        render_template(order_meal, values, language=language)
        == "双人套餐 × 1，送到南京路1号（放门口）。"
    )


def test_render_template_refuses_a_missing_required_value(order_meal):
    with pytest.raises(TemplateSlotMissing) as exc:
        render_template(order_meal, {"meal": "classic", "address": ""}, language="en")
    assert exc.value.code == "template_slot_missing"
    assert exc.value.extra["slots"] == ["quantity", "address"]


def test_render_template_without_a_template_for_the_language(db):
    intent = Intent.objects.create(name="chat", reply_mode=ReplyMode.LLM)
    with pytest.raises(TemplateMissing):
        render_template(intent, {}, language="zh")


def test_missing_slots_are_the_required_ones_in_asking_order(order_meal):
    assert [s.name for s in missing_slots(order_meal, set())] == ["meal", "quantity", "address"]
    assert [s.name for s in missing_slots(order_meal, {"meal", "address"})] == ["quantity"]
    assert missing_slots(order_meal, {"meal", "quantity", "address"}) == []


def test_active_intents_come_with_their_slots_in_two_queries(order_meal, django_assert_num_queries):
    Intent.objects.create(name="greeting", active=False)
    with django_assert_num_queries(2):
        intents = list(intent_list_active())
        names = [s.name for s in missing_slots(intents[0], set())]
    assert [i.name for i in intents] == ["order_meal"]
    assert names == ["meal", "quantity", "address"]
    assert intent_get_active("greeting") is None


# --- load_demo ------------------------------------------------------------------------------


def load_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def test_load_demo_is_idempotent(db):
    # when it runs twice
    first = load_demo()
    counts = (Intent.objects.count(), SlotDefinition.objects.count())
    second = load_demo()
    # then the second run changes nothing
    assert counts == (5, 5)
    assert (Intent.objects.count(), SlotDefinition.objects.count()) == counts
    assert "15 created" in first  # 5 intents, 5 slots, 5 sets of examples
    assert "0 created, 0 updated, 15 unchanged" in second


def test_load_demo_restores_demo_rows_but_only_new_keeps_staff_edits(db):
    load_demo()
    Intent.objects.filter(name="greeting").update(response_template_en="Hi there")
    assert "5 kept" in load_demo("--only-new")
    assert Intent.objects.get(name="greeting").response_template_en == "Hi there"
    assert "updated: greeting" in load_demo()
    assert Intent.objects.get(name="greeting").response_template_en.startswith("Hello!")


def test_the_demo_domain_replies_in_both_languages(db):
    load_demo()
    order = intent_get_active("order_meal")
    assert order is not None
    assert [s.name for s in missing_slots(order, {"meal"})] == ["quantity", "phone", "address"]
    assert [s.is_personal_data for s in order.slots.all()] == [False, False, True, True]
    values = {"meal": "kids", "quantity": "3", "phone": "138****0000", "address": "人民路8号"}
    assert render_template(order, values, language="zh").startswith(
        "好的：儿童套餐 × 3，送到人民路8号"
    )
    assert render_template(order, values, language="en").startswith("Got it: 3 × Kids set")


def test_load_demo_refuses_a_template_naming_no_slot(db, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"intents": [{"name": "greeting", "response_template_en": "Hi {name}",'
        ' "response_template_zh": "你好", "slots": []}]}',
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match=r"\{name\}: no slot"):
        load_demo("--file", str(bad))
    assert not Intent.objects.exists()  # all or nothing


# --- the admin ------------------------------------------------------------------------------


def test_the_intent_list_costs_a_fixed_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    # given the demo domain plus many more intents with slots
    load_demo()
    for i in range(30):
        intent = Intent.objects.create(name=f"extra_{i}", reply_mode=ReplyMode.LLM)
        intent.slots.create(name="a", required=False, is_personal_data=False)
        intent.slots.create(name="b", required=False, is_personal_data=False)
    # when staff open the list
    with django_assert_max_num_queries(8):
        response = staff_client.get(reverse("admin:nlu_intent_changelist"))
    # then the slot counts are there
    assert response.status_code == 200
    assert response.context["cl"].result_count == 35
    assert {i.name: i.slot_count for i in response.context["cl"].result_list}["order_meal"] == 4


def test_the_change_form_shows_the_slots_inline(staff_client):
    load_demo()
    intent = Intent.objects.get(name="order_meal")
    response = staff_client.get(reverse("admin:nlu_intent_change", args=[intent.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="slots-TOTAL_FORMS" value="4"' in html
    assert "请留一个联系电话" in html
