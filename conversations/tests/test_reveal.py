"""Revealing a decrypted slot value: needs a permission, writes an audit record, logs no value."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Permission
from django.test import Client

from conversations import pii, services
from conversations.exceptions import PersonalDataUnreadable, RevealNotPermitted, SlotNotFound
from conversations.models import Conversation, PersonalDataReveal, SlotValue
from conversations.reveal import slot_reveal

pytestmark = pytest.mark.django_db

PHONE = "13912345678"
MASKED = "139****5678"


def fill(conversation: Conversation, name: str = "phone", value: str = PHONE) -> SlotValue:
    return services.slot_set(
        conversation_id=conversation.pk, name=name, kind="phone", value=value, personal=True
    )


def grant(user, *codenames: str):  # type: ignore[no-untyped-def]
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="conversations", codename__in=codenames)
    )
    return user


@pytest.fixture
def revealer(alice):  # type: ignore[no-untyped-def]
    """Staff (not superuser) who may view conversations and reveal personal data."""
    return grant(alice, "view_conversation", "view_slotvalue", "reveal_slotvalue")


@pytest.fixture
def viewer(bob):  # type: ignore[no-untyped-def]
    """Staff who may view conversations but not reveal."""
    return grant(bob, "view_conversation", "view_slotvalue")


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def reveal_url(conversation: Conversation, slot: SlotValue) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/slots/{slot.pk}/reveal/"


def change_url(conversation: Conversation) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/change/"


def test_staff_without_the_permission_get_403_and_no_record(viewer, anon_conversation):
    # given
    slot = fill(anon_conversation)

    # when
    response = client_for(viewer).post(reveal_url(anon_conversation, slot))

    # then
    assert response.status_code == 403
    assert PHONE not in response.content.decode()
    assert not PersonalDataReveal.objects.exists()


def test_staff_with_the_permission_see_the_value_and_one_record_is_written(
    revealer, anon_conversation
):
    # given
    slot = fill(anon_conversation)

    # when
    response = client_for(revealer).post(reveal_url(anon_conversation, slot))

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert PHONE in html and "phone" in html
    assert "This reveal was recorded (who, when, which field)" in html
    assert change_url(anon_conversation) in html
    record = PersonalDataReveal.objects.get()
    assert (record.user, record.username, record.conversation_public_id, record.slot_name) == (
        revealer,
        "alice",
        anon_conversation.public_id,
        "phone",
    )


def test_get_is_not_allowed(revealer, anon_conversation):
    slot = fill(anon_conversation)
    response = client_for(revealer).get(reveal_url(anon_conversation, slot))
    assert response.status_code == 405
    assert not PersonalDataReveal.objects.exists()


def test_a_slot_of_another_conversation_is_not_found(revealer, anon_conversation, anon_session):
    # given a slot that belongs to another conversation than the one in the URL
    other = Conversation.objects.create(session_key=anon_session.session_key)
    slot = fill(other)

    # when
    response = client_for(revealer).post(reveal_url(anon_conversation, slot))

    # then
    assert response.status_code == 404
    assert PHONE not in response.content.decode()
    assert not PersonalDataReveal.objects.exists()


def test_an_unknown_conversation_is_not_found(revealer, anon_conversation):
    slot = fill(anon_conversation)
    url = f"/admin/conversations/conversation/{anon_conversation.pk + 1000}/slots/{slot.pk}/reveal/"
    assert client_for(revealer).post(url).status_code == 404


def test_the_change_page_shows_the_mask_and_the_button_only_to_the_permitted(
    revealer, viewer, anon_conversation
):
    # given
    slot = fill(anon_conversation)

    # when
    pages = {
        user.username: client_for(user).get(change_url(anon_conversation))
        for user in (revealer, viewer)
    }

    # then both see the mask, neither the value; only the revealer gets a button
    for page in pages.values():
        html = page.content.decode()
        assert page.status_code == 200
        assert MASKED in html and PHONE not in html
    assert reveal_url(anon_conversation, slot) in pages["alice"].content.decode()
    assert "csrfmiddlewaretoken" in pages["alice"].content.decode()
    assert reveal_url(anon_conversation, slot) not in pages["bob"].content.decode()
    assert ">Reveal</button>" not in pages["bob"].content.decode()
    assert not PersonalDataReveal.objects.exists()


def test_the_audit_admin_refuses_add_change_and_delete(admin_client, revealer, anon_conversation):
    # given a record
    slot = fill(anon_conversation)
    slot_reveal(slot_id=slot.pk, user=revealer)
    record = PersonalDataReveal.objects.get()
    base = "/admin/conversations/personaldatareveal/"

    # when / then a superuser can list, search and view it, but not touch it
    listing = admin_client.get(base, {"q": str(anon_conversation.public_id)[:8]})
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    assert admin_client.get(base, {"username": "alice"}).status_code == 200
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}add/", {"username": "mallory"}).status_code == 403
    detail = admin_client.get(f"{base}{record.pk}/change/")
    assert detail.status_code == 200 and 'name="username"' not in detail.content.decode()
    assert admin_client.post(f"{base}{record.pk}/change/", {"username": "x"}).status_code == 403
    assert admin_client.post(f"{base}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client.post(
        base, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert PersonalDataReveal.objects.filter(pk=record.pk, username="alice").exists()


def test_the_service_refuses_a_user_without_the_permission(viewer, anon_conversation):
    slot = fill(anon_conversation)
    with pytest.raises(RevealNotPermitted) as caught:
        slot_reveal(slot_id=slot.pk, user=viewer)
    assert (caught.value.code, caught.value.status) == ("permission_denied", 403)
    assert not PersonalDataReveal.objects.exists()


def test_the_service_reports_a_missing_slot(revealer, anon_conversation, anon_session):
    slot = fill(anon_conversation)
    other = Conversation.objects.create(session_key=anon_session.session_key)
    for kwargs in ({"slot_id": slot.pk + 1000}, {"slot_id": slot.pk, "conversation_id": other.pk}):
        with pytest.raises(SlotNotFound) as caught:
            slot_reveal(user=revealer, **kwargs)
        assert (caught.value.code, caught.value.status) == ("slot_not_found", 404)
    assert not PersonalDataReveal.objects.exists()


def test_a_wrong_key_raises_and_reveals_nothing(revealer, anon_conversation, settings):
    # given a value stored under the original key, then a different key configured
    slot = fill(anon_conversation)
    settings.PII_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    pii._fernet_for.cache_clear()

    # when / then the service fails clearly, with no record and no ciphertext
    with pytest.raises(PersonalDataUnreadable) as caught:
        slot_reveal(slot_id=slot.pk, user=revealer)
    assert caught.value.code == "pii_decrypt_failed"
    assert "gAAAA" not in str(caught.value)
    assert isinstance(caught.value.__cause__, pii.PiiDecryptError)
    assert not PersonalDataReveal.objects.exists()

    # and the admin shows the change page (masked, never decrypted) with the error message
    client = client_for(revealer)
    response = client.post(reveal_url(anon_conversation, slot), follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "cannot be decrypted" in html and MASKED in html
    assert "gAAAA" not in html and PHONE not in html
    assert not PersonalDataReveal.objects.exists()


def test_a_reveal_logs_who_and_which_field_but_not_the_value(revealer, anon_conversation, caplog):
    # given
    slot = fill(anon_conversation)

    # when
    with caplog.at_level(logging.DEBUG):
        value = client_for(revealer).post(reveal_url(anon_conversation, slot))

    # then
    assert value.status_code == 200
    revealed = [r for r in caplog.records if r.getMessage() == "personal data revealed"]
    assert len(revealed) == 1
    assert revealed[0].user_id == revealer.pk  # type: ignore[attr-defined]
    assert revealed[0].conversation_id == str(anon_conversation.public_id)  # type: ignore[attr-defined]
    assert revealed[0].slot == "phone"  # type: ignore[attr-defined]
    for record in caplog.records:
        assert PHONE not in record.getMessage()
        assert PHONE not in repr(vars(record))
