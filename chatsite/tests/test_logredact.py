"""The log filter keeps phone numbers, e-mail addresses and street addresses out of the logs."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest
from django.conf import settings

from chatsite.logredact import RedactPersonalData, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +86 138 0013 8000 now", "call [phone] now"),
        ("call 13800138000 now", "call [phone] now"),
        ("call 138-0013-8000 now", "call [phone] now"),
        ("call (+86) 138-0013-8000", "call [phone]"),
        ("电话13800138000", "电话[phone]"),
        ("uk +44 20 7946 0958 ok", "uk [phone] ok"),
        ("write to Bob.Smith+x@Example.co.uk please", "write to [email] please"),
        ("我的地址是北京市朝阳区建国路88号，谢谢", "[address]，谢谢"),
        ("上海市浦东新区世纪大道100号3室", "[address]"),
        ("lives at 221B Baker Street, London", "lives at [address], London"),
        ("send it to 10 Downing St.", "send it to [address]"),
    ],
)
def test_each_kind_is_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", ["order 12345678 shipped", "市场很好", "+1 2345", "3 items"])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def make_record(msg, args=(), **extra):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_the_filter_redacts_the_message_its_arguments_and_extra_fields():
    # given
    record = make_record(
        "user %s wrote from %s",
        ("alice@example.com", 13800138000),
        contact={"phone": "+86 138 0013 8000", "n": 3},
        note="ship to 12 Baker Street",
    )
    # when
    kept = RedactPersonalData().filter(record)
    # then
    assert kept is True
    assert record.getMessage() == "user [email] wrote from [phone]"
    assert record.contact == {"phone": "[phone]", "n": 3}
    assert record.note == "ship to [address]"


def test_the_console_handler_in_settings_redacts(capsys):
    # given: the project's LOGGING, as Django configures it at start-up
    logging.config.dictConfig(settings.LOGGING)
    logger = logging.getLogger("chatsite.tests.redact")
    # when
    logger.warning("callback %s", "13800138000", extra={"email": "bob@example.com"})
    # then
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "callback [phone]"
    assert line["email"] == "[email]"
