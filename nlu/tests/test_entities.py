"""Entity extraction for slot filling: every slot type, both languages, corrections, yes/no."""

from __future__ import annotations

import datetime

import pytest

from nlu.entities import Entity, SlotSpec, extract, is_cancel, parse_number, yes_no
from nlu.models import Intent, SlotDefinition, SlotType

# Mirrors nlu/demo/domain.json.
MEAL = SlotSpec(
    "meal",
    "choice",
    (
        ("classic", "Classic set", "经典套餐"),
        ("for_two", "Set for two", "双人套餐"),
        ("kids", "Kids set", "儿童套餐"),
    ),
)
QUANTITY = SlotSpec("quantity", "number")
PHONE = SlotSpec("phone", "phone")
ADDRESS = SlotSpec("address", "address")
ORDER_MEAL = [MEAL, QUANTITY, PHONE, ADDRESS]
CHECK_ORDER = [SlotSpec("order_ref", "text")]
DELIVERY_DAY = [SlotSpec("day", "date")]
EMAIL = [SlotSpec("email", "email")]

TODAY = datetime.date(2026, 11, 18)  # a Wednesday


def values(text: str, slots=ORDER_MEAL, awaiting: str | None = None) -> dict[str, str]:
    found = extract(text, slots, awaiting=awaiting, today=TODAY)
    for entity in found.values():
        assert entity.raw and entity.raw in text, f"raw {entity.raw!r} is not a substring"
    return {name: entity.value for name, entity in found.items()}


# --- SlotSpec ---------------------------------------------------------------------------------


def test_slot_spec_from_definition():
    slot = SlotDefinition(
        intent=Intent(name="order_meal"),
        name="meal",
        slot_type=SlotType.CHOICE,
        choices=[{"value": "classic", "en": "Classic set", "zh": "经典套餐"}],
    )
    spec = SlotSpec.from_definition(slot)
    assert spec == SlotSpec("meal", "choice", (("classic", "Classic set", "经典套餐"),))
    assert SlotSpec.from_definition(SlotDefinition(name="phone", slot_type=SlotType.PHONE)) == PHONE


# --- Phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("+86 139 1234 5678", "+86 139 1234 5678"),
        ("13912345678", "13912345678"),
        ("139-1234-5678", "139-1234-5678"),
        ("(+86)13912345678", "(+86)13912345678"),
        ("0086 13912345678", "0086 13912345678"),
        ("１３９１２３４５６７８", "１３９１２３４５６７８"),
        ("我的手机号是１３９ １２３４ ５６７８，谢谢", "１３９ １２３４ ５６７８"),
        ("my phone is 139-1234-5678 thanks", "139-1234-5678"),
    ],
)
def test_mainland_mobile_in_every_spelling(text, raw):
    found = extract(text, ORDER_MEAL, today=TODAY)
    assert found["phone"] == Entity("phone", "13912345678", raw)
    assert "quantity" not in found


def test_international_and_landline_numbers():
    assert values("phone is +1 415 555 0123")["phone"] == "+14155550123"
    assert values("+44 20 7946 0958")["phone"] == "+442079460958"
    # A landline needs the phone to be asked for or named, or "021" could be anything.
    assert values("电话是021-12345678")["phone"] == "02112345678"
    assert values("021 1234 5678", awaiting="phone")["phone"] == "02112345678"
    assert "phone" not in values("021 1234 5678")


def test_phone_correction_takes_the_new_number():
    assert values("不对，手机号是 139 1234 5678") == {"phone": "13912345678"}
    assert values("不是13812345678，是13912345678")["phone"] == "13912345678"


# --- E-mail -----------------------------------------------------------------------------------


def test_email_is_lowercased_and_raw_is_original():
    found = extract("邮箱是 Foo.Bar@Example.COM，谢谢", EMAIL, today=TODAY)
    assert found["email"] == Entity("email", "foo.bar@example.com", "Foo.Bar@Example.COM")
    full_width = "ｍｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    assert extract(full_width, EMAIL)["email"] == Entity("email", "me@example.com", full_width)


def test_digits_in_an_email_are_no_phone_or_quantity():
    slots = [*EMAIL, QUANTITY, PHONE]
    assert values("13912345678@qq.com", slots) == {"email": "13912345678@qq.com"}


# --- Choice and quantity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("两份经典套餐", {"meal": "classic", "quantity": "2"}),
        ("经典套餐两份", {"meal": "classic", "quantity": "2"}),
        ("给我来3份儿童套餐", {"meal": "kids", "quantity": "3"}),
        ("I'd like two classic sets", {"meal": "classic", "quantity": "2"}),
        ("I want 2 classic sets", {"meal": "classic", "quantity": "2"}),
        ("经典套餐 x2", {"meal": "classic", "quantity": "2"}),
        ("2x kids set", {"meal": "kids", "quantity": "2"}),
        ("I'd like a couple of kids sets", {"meal": "kids", "quantity": "2"}),
        ("two sets for two", {"meal": "for_two", "quantity": "2"}),
        ("I want the set for two", {"meal": "for_two"}),
        ("a set for two people", {"meal": "for_two"}),
        ("双人套餐", {"meal": "for_two"}),
        ("经典的", {"meal": "classic"}),
        ("Classic", {"meal": "classic"}),
        ("ｋｉｄｓ set", {"meal": "kids"}),
        ("children's set please", {"meal": "kids"}),
        ("儿童", {"meal": "kids"}),
    ],
)
def test_meal_and_quantity(text, expected):
    assert values(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("actually make it two", {"quantity": "2"}),
        ("make it 3 please", {"quantity": "3"}),
        ("改成三份", {"quantity": "3"}),
        ("改成两份", {"quantity": "2"}),
        ("no, three", {"quantity": "3"}),
        ("no, make it the kids set", {"meal": "kids"}),
        ("改成双人套餐", {"meal": "for_two"}),
        ("把经典套餐换成儿童套餐", {"meal": "kids"}),
        ("change classic to the kids set", {"meal": "kids"}),
        ("不要经典套餐，要儿童套餐", {"meal": "kids"}),
        ("I don't want the classic, give me the kids set", {"meal": "kids"}),
    ],
)
def test_corrections(text, expected):
    assert values(text) == expected


@pytest.mark.parametrize(
    "text",
    ["classic or kids?", "I'd like the classic set for two", "我要一个儿童套餐和一个经典套餐"],
)
def test_two_different_choices_give_no_meal(text):
    assert "meal" not in values(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", "3"),
        ("３", "3"),
        ("三", "3"),
        ("2份", "2"),
        ("要两份吧", "2"),
        ("十二", "12"),
        ("二十", "20"),
        ("one", "1"),
        ("three please", "3"),
        ("twenty-one", "21"),
        ("a classic set", "1"),
    ],
)
def test_quantity_when_asked(text, expected):
    assert values(text, awaiting="quantity")["quantity"] == expected


@pytest.mark.parametrize(
    ("text", "awaiting"),
    [
        ("送到世纪大道100号", "address"),
        ("送到世纪大道100号", None),
        ("世纪大道100号", None),
        ("13912345678", "quantity"),
        ("3", "phone"),  # asked for a phone: a lone digit is not a quantity
        ("等一下", "quantity"),
        ("第一个", "quantity"),
        ("the one with chicken", "quantity"),
        ("下午3点", "quantity"),
        ("明天下午3点送", None),
        ("I'd like a classic set", None),  # "a" counts only when asked how many
        ("we are 3 floors up", "quantity"),
    ],
)
def test_numbers_that_are_not_quantities(text, awaiting):
    assert "quantity" not in values(text, awaiting=awaiting)


def test_number_slot_never_steals_digits_from_phone_or_address():
    text = "两份经典套餐，送到世纪大道100号，电话13912345678"
    assert values(text) == {
        "meal": "classic",
        "quantity": "2",
        "phone": "13912345678",
        "address": "世纪大道100号",
    }
    text = "I want 2 classic sets delivered to 100 Century Avenue"
    assert values(text) == {"meal": "classic", "quantity": "2", "address": "100 Century Avenue"}


def test_bare_number_only_with_a_single_number_slot():
    two_numbers = [SlotSpec("adults", "number"), SlotSpec("children", "number")]
    assert values("no, three", two_numbers) == {}
    assert values("three", two_numbers, awaiting="children") == {"children": "3"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", 2), ("两", 2), ("十二", 12), ("一百零五", 105), ("forty-two", 42), ("dozen", 12)],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["", "一二", "hello", "两个"])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


# --- Address ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "awaiting", "expected"),
    [
        ("送到上海市浦东新区世纪大道100号，谢谢", None, "上海市浦东新区世纪大道100号"),
        ("地址：北京市海淀区中关村大街1号", None, "北京市海淀区中关村大街1号"),
        ("地址改成北京市朝阳区建国路88号", None, "北京市朝阳区建国路88号"),
        ("地址不对，是世纪大道200号", None, "世纪大道200号"),
        ("送到儿童医院", None, "儿童医院"),
        ("世纪大道100号", "address", "世纪大道100号"),
        ("不是世纪大道100号，是世纪大道200号", "address", "世纪大道200号"),
        ("no, the address is 100 Century Avenue", None, "100 Century Avenue"),
        (
            "my address is 100 Century Avenue, Pudong, Shanghai. Thanks!",
            None,
            "100 Century Avenue, Pudong, Shanghai",
        ),
        ("deliver it to 100 Century Ave please", None, "100 Century Ave"),
        ("Pudong, Shanghai", "address", "Pudong, Shanghai"),
        ("Yes, 100 Century Ave", "address", "100 Century Ave"),
        ("Room 5, 100 Century Ave", "address", "Room 5, 100 Century Ave"),
    ],
)
def test_address(text, awaiting, expected):
    assert values(text, awaiting=awaiting)["address"] == expected


def test_address_raw_maps_back_to_full_width_original():
    text = "送到 世纪大道１００号 ３栋２０１室"
    found = extract(text, ORDER_MEAL, awaiting="address", today=TODAY)
    assert found["address"] == Entity(
        "address", "世纪大道100号 3栋201室", "世纪大道１００号 ３栋２０１室"
    )


@pytest.mark.parametrize(
    "text", ["世纪大道100号", "100 Century Avenue", "Pudong, Shanghai", "什么时候送到？"]
)
def test_no_address_without_lead_in_unless_asked(text):
    assert "address" not in values(text)


@pytest.mark.parametrize(
    "text",
    [
        "好的",
        "yes",
        "不对",
        "13912345678",
        "改成三份",
        "make it two",
        "3",
        "经典套餐",
        "你们几点送？",
        "你好",
        "hello",
        "我在上班",
        "算了",
    ],
)
def test_answers_that_are_not_an_address_when_asked(text):
    assert "address" not in values(text, awaiting="address")


def test_when_asked_for_the_address_other_values_still_count():
    assert values("两份经典套餐", awaiting="address") == {"meal": "classic", "quantity": "2"}
    assert values("13912345678", awaiting="address") == {"phone": "13912345678"}


# --- Free text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("订单号是 A12345", "A12345"),
        ("my order number is 12345, thanks", "12345"),
        ("order #ab-778", "ab-778"),
        ("13912345678", "13912345678"),  # an order can be looked up by phone
        ("ＡＢ１２３", "AB123"),
    ],
)
def test_text_when_asked(text, expected):
    found = extract(text, CHECK_ORDER, awaiting="order_ref", today=TODAY)
    assert found["order_ref"].value == expected
    assert found["order_ref"].raw in text


@pytest.mark.parametrize("text", ["好的", "不知道", "what?", "算了"])
def test_text_rejects_non_answers(text):
    assert extract(text, CHECK_ORDER, awaiting="order_ref") == {}


def test_text_needs_to_be_asked():
    assert extract("订单号是 A12345", CHECK_ORDER) == {}


# --- Dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", "2026-11-18"),
        ("明天", "2026-11-19"),
        ("后天", "2026-11-20"),
        ("大后天", "2026-11-21"),
        ("tomorrow please", "2026-11-19"),
        ("the day after tomorrow", "2026-11-20"),
        ("下周一", "2026-11-23"),
        ("next Monday", "2026-11-23"),
        ("this Friday", "2026-11-20"),
        ("周三", "2026-11-18"),
        ("星期二", "2026-11-24"),
        ("11月23日", "2026-11-23"),
        ("11/23", "2026-11-23"),
        ("2026-11-23", "2026-11-23"),
        ("November 23rd", "2026-11-23"),
        ("11月1日", "2027-11-01"),  # already past this year: next year's
        ("3天后", "2026-11-21"),
        ("in two days", "2026-11-20"),
        ("不是明天，是后天", "2026-11-20"),
    ],
)
def test_dates_relative_to_today(text, expected):
    assert values(text, DELIVERY_DAY) == {"day": expected}


def test_dates_only_fill_date_slots_and_block_quantities():
    assert values("11月23日") == {}
    assert values("11月23日送", awaiting="quantity") == {}


# --- Yes / no / cancel ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("是", True),
        ("是的", True),
        ("对", True),
        ("对对对", True),
        ("好的", True),
        ("好的，谢谢", True),
        ("没错", True),
        ("确认", True),
        ("可以", True),
        ("嗯", True),
        ("没问题", True),
        ("yes", True),
        ("Yes!", True),
        ("yep", True),
        ("correct", True),
        ("sure", True),
        ("OK", True),
        ("that's right", True),
        ("confirm", True),
        ("no problem", True),
        ("不", False),
        ("不对", False),
        ("不是", False),
        ("错了", False),
        ("不对，手机号是139 1234 5678", False),
        ("no", False),
        ("nope", False),
        ("wrong", False),
        ("cancel", False),
        ("no, make it two", False),
        ("yes, but make it two", False),
        ("嗯，改成三份", False),
        ("hello", None),
        ("两份", None),
        ("经典套餐", None),
        ("是不是两份", None),
        ("I'm not sure", None),
        ("不客气", None),
        ("嗯？", None),
        ("是世纪大道100号", None),
    ],
)
def test_yes_no(text, expected):
    assert yes_no(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("算了", True),
        ("取消", True),
        ("不要了", True),
        ("算了，谢谢", True),
        ("取消订单", True),
        ("cancel", True),
        ("Cancel it", True),
        ("never mind", True),
        ("forget it", True),
        ("stop", True),
        ("please stop", True),
        ("不要取消", False),
        ("don't cancel", False),
        ("deliver to the bus stop on Main Street", False),
        ("no", False),
        ("不对", False),
        ("不要经典套餐", False),
        ("两份", False),
    ],
)
def test_is_cancel(text, expected):
    assert is_cancel(text) is expected
