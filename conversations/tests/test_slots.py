"""Slot values: encrypted at rest, found by blind index, corrections kept as masked history.

Includes the canary scan: after storing known personal data, neither a database dump nor any
log line contains it in plaintext.
"""

from __future__ import annotations

import io
import logging
import subprocess
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from conversations import services
from conversations.models import Conversation, SlotValue
from conversations.selectors import conversation_find_by_slot
from conversations.streams import close_hub
from conversations.tests.wsclient import communicator_for, receive_until
from conversations.turns import wait_for_running_turns
from testkit.scripted_llm import Script

pytestmark = pytest.mark.django_db(transaction=True)


def fill(conversation, name: str, kind: str, value: str, *, personal: bool = True):  # type: ignore[no-untyped-def]
    return services.slot_set(
        conversation_id=conversation.pk, name=name, kind=kind, value=value, personal=personal
    )


PHONE = "+86 139 1234 5678"
PHONE_FORMS = ["13912345678", "139-1234-5678", "+86 139 1234 5678"]
ADDRESS = "上海市浦东新区世纪大道100号"
EMAIL = "ann.canary@example.com"


def test_a_slot_is_encrypted_in_the_table_and_plain_in_python(anon_conversation):
    # when
    fill(anon_conversation, "phone", "phone", PHONE)

    # then the column holds a token, the model gives the value back, staff see the mask
    with connection.cursor() as cursor:
        cursor.execute("SELECT value, masked FROM conversations_slotvalue")
        raw, masked = cursor.fetchone()
    assert "1234" not in raw and raw.startswith("gAAAA")
    assert masked == "139****5678"
    assert SlotValue.objects.get().value == PHONE


def test_a_conversation_is_found_by_phone_in_any_format(anon_conversation, anon_session):
    other = Conversation.objects.create(session_key=anon_session.session_key)
    fill(anon_conversation, "phone", "phone", PHONE)
    fill(other, "phone", "phone", "13800138000")
    for form in PHONE_FORMS:
        assert list(conversation_find_by_slot(form, "phone")) == [anon_conversation]


def test_a_correction_overwrites_and_is_kept_as_masked_history(anon_conversation):
    # given
    fill(anon_conversation, "phone", "phone", "13800138000")
    fill(anon_conversation, "quantity", "number", "1", personal=False)

    # when the user changes their mind ("不对，手机号是 139...", "actually make it two")
    fill(anon_conversation, "phone", "phone", PHONE)
    fill(anon_conversation, "quantity", "number", "2", personal=False)
    fill(anon_conversation, "quantity", "number", "2", personal=False)

    # then one value per slot, and the history says what changed without the plaintext
    values = {s.name: s.value for s in SlotValue.objects.all()}
    assert values == {"phone": PHONE, "quantity": "2"}
    history = list(anon_conversation.slot_changes.values_list("name", "old_masked", "new_masked"))
    assert history == [
        ("phone", "", "138****8000"),
        ("quantity", "", "1"),
        ("phone", "138****8000", "139****5678"),
        ("quantity", "1", "2"),
    ]


def _console_handler() -> logging.Handler:
    return next(h for h in logging.getLogger().handlers if h.filters)


def _order_through_the_socket(conversation: Conversation, session_key: str) -> None:
    """A whole order over the real socket, giving the phone, the address and an e-mail."""

    async def run() -> None:
        ws = communicator_for(conversation, session_key=session_key)
        assert (await ws.connect())[0]
        await ws.receive_from()  # hello
        for text in [
            "我要点餐",
            "经典套餐，两份",
            f"我的手机号是 {PHONE}",
            f"送到{ADDRESS}",
            "对",
            f"my email is {EMAIL}",
        ]:
            await ws.send_json_to(
                {"type": "message.send", "text": text, "client_id": str(uuid.uuid4())}
            )
            await receive_until(ws, "message.done")
        await ws.disconnect()
        await wait_for_running_turns()
        await close_hub()

    async_to_sync(run)()


def test_canary_personal_data_is_in_no_dump_and_no_log_line(
    anon_conversation, anon_session, scripted_llm
):
    # given the demo domain, and a model that labels the first message and answers the last
    call_command("load_demo", stdout=io.StringIO())
    scripted_llm.responder = lambda request: Script(
        tokens=["order_meal" if request["messages"][-1]["content"] == "我要点餐" else "none"]
    )
    scripted_llm.script = Script.words("Noted, thank you.")
    # and log output captured through the product's own console handler (with its filter)
    handler = _console_handler()
    captured = io.StringIO()
    previous = handler.setStream(captured)  # type: ignore[attr-defined]
    try:
        # when known personal data is given in a conversation, stored and mentioned in logs
        _order_through_the_socket(anon_conversation, anon_session.session_key)
        fill(anon_conversation, "email", "email", EMAIL)
        logging.getLogger("conversations").warning(
            "user said %s, ship to %s, mail %s", PHONE, ADDRESS, EMAIL
        )
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    values = {s.name: s.value for s in SlotValue.objects.filter(conversation=anon_conversation)}
    assert values == {
        "meal": "classic",
        "quantity": "2",
        "phone": "13912345678",
        "address": ADDRESS,
        "email": EMAIL,
    }

    # then the database, dumped whole, holds none of it
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                db.get("HOST") or "127.0.0.1",
                "-p",
                str(db.get("PORT") or 5432),
                "-U",
                db.get("USER") or "postgres",
                "--data-only",
                db["NAME"],
            ],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout.decode("utf-8", "replace")
    else:
        connection.close()
        dump = Path(db["NAME"]).read_bytes().decode("utf-8", "replace")
    logs = captured.getvalue()
    assert "slot filled" in logs and "139****5678" in logs
    for text, where in ((dump, "database dump"), (logs, "log output")):
        for canary in [
            "13912345678",
            "139 1234 5678",
            "1234 5678",
            ADDRESS,
            "世纪大道",
            EMAIL,
            "ann.canary",
        ]:
            assert canary not in text, f"{canary!r} in the {where}"


def test_the_admin_shows_slots_masked_only(admin_client, anon_conversation):
    fill(anon_conversation, "phone", "phone", PHONE)
    page = admin_client.get(f"/admin/conversations/conversation/{anon_conversation.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "139****5678" in html
    assert "1234 5678" not in html and "13912345678" not in html
