"""Picking a conversation up on another device with a one-time code."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conversations import pickup, selectors
from conversations.models import Conversation, ConversationGrant, Message, PickupCode
from conversations.tests.wsclient import communicator_for

pytestmark = pytest.mark.django_db

CODE = re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$")


def chat_url(conversation: Conversation) -> str:
    return reverse("conversations:chat", kwargs={"conversation_id": conversation.public_id})


def code_url(conversation: Conversation) -> str:
    return reverse("api:pickup-code-create", kwargs={"conversation_id": conversation.public_id})


def session_client(session_key: str) -> Client:
    client = Client()
    client.cookies["sessionid"] = session_key
    return client


def new_device() -> Client:
    """A second browser: its own session, made by visiting the site."""
    client = Client()
    client.get("/")
    return client


def make_code(owner: Client, conversation: Conversation) -> str:
    response = owner.post(code_url(conversation))
    assert response.status_code == 201, response.content
    return response.json()["code"]


def redeem(client: Client, code: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("api:pickup-redeem"), {"code": code}, content_type="application/json"
    )


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["code"]


@pytest.fixture
def owner(anon_session) -> Client:  # type: ignore[no-untyped-def]
    return session_client(anon_session.session_key)


@pytest.fixture
def history(anon_conversation) -> Conversation:  # type: ignore[no-untyped-def]
    Message.objects.create(conversation=anon_conversation, sequence=1, role="user", text="hello")
    Message.objects.create(
        conversation=anon_conversation, sequence=2, role="assistant", text="hi there"
    )
    return anon_conversation


def test_a_code_opens_the_conversation_on_another_device(owner, history, settings):
    # given the owner makes a code
    before = timezone.now()
    response = owner.post(code_url(history))
    assert response.status_code == 201
    body = response.json()
    assert CODE.match(body["code"])
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=settings.CHAT_PICKUP_CODE_MINUTES - 1) < expires_at - before
    assert expires_at - before <= timedelta(minutes=settings.CHAT_PICKUP_CODE_MINUTES, seconds=5)
    device = new_device()
    assert device.get(chat_url(history)).status_code == 404

    # when another browser redeems it
    response = redeem(device, body["code"])

    # then that browser can open the page, read the state and sees it in its list
    assert response.status_code == 200
    assert response.json() == {
        "conversation_id": str(history.public_id),
        "url": chat_url(history),
    }
    page = device.get(chat_url(history))
    assert page.status_code == 200
    assert "hi there" in page.content.decode()
    state = device.get(
        reverse("api:conversation-state", kwargs={"conversation_id": history.public_id})
    )
    assert state.status_code == 200
    assert [m["text"] for m in state.json()["messages"]] == ["hello", "hi there"]
    assert device.get("/")["Location"] == chat_url(history)
    grant = ConversationGrant.objects.get()
    assert grant.session_key == device.session.session_key
    assert PickupCode.objects.get().used_at is not None
    # a grant lets the device open the conversation, not hand it on
    response = device.post(code_url(history))
    assert response.status_code == 403 and error_code(response) == "not_owner"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_cleanup")
async def test_the_second_device_can_connect_the_socket(anon_conversation):
    # given a second browser session, refused at first
    device = await database_sync_to_async(SessionStore)()
    await database_sync_to_async(device.create)()
    refused = communicator_for(anon_conversation, session_key=device.session_key)
    connected, code = await refused.connect()
    assert not connected and code == 4403

    # when it redeems a code the owner made
    code, _ = await database_sync_to_async(pickup.pickup_code_create)(
        conversation=anon_conversation
    )
    actor = selectors.Actor(user_id=None, session_key=device.session_key)
    await database_sync_to_async(pickup.pickup_code_redeem)(code=code, actor=actor)

    # then its socket is accepted
    ws = communicator_for(anon_conversation, session_key=device.session_key)
    connected, _ = await ws.connect()
    assert connected
    hello = json.loads(await ws.receive_from())
    assert hello["type"] == "hello" and hello["conversation_id"] == str(anon_conversation.public_id)
    await ws.disconnect()


def test_a_code_works_once(owner, anon_conversation):
    # given a code redeemed by one device
    code = make_code(owner, anon_conversation)
    first = new_device()
    assert redeem(first, code).status_code == 200

    # when a third device tries it
    response = redeem(new_device(), code)

    # then
    assert response.status_code == 409
    assert error_code(response) == "pickup_code_used"
    # the device that redeemed it may type it again: it already has the conversation
    assert redeem(first, code).status_code == 200
    assert ConversationGrant.objects.count() == 1


def test_an_expired_code_is_refused(owner, anon_conversation):
    # given a code whose time is up
    code = make_code(owner, anon_conversation)
    PickupCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    # when / then
    response = redeem(new_device(), code)
    assert response.status_code == 409
    assert error_code(response) == "pickup_code_expired"
    assert not ConversationGrant.objects.exists()


@pytest.mark.parametrize("typed", ["ABCD-EFGH", "abc", "", "K7QF-M2X0", "K7QF-M2XD-EXTRA"])
def test_a_wrong_code_is_refused(owner, anon_conversation, typed):
    # given a live code, and somebody typing something else
    make_code(owner, anon_conversation)
    device = new_device()

    # when
    response = redeem(device, typed)

    # then
    assert response.status_code == (404 if typed else 400)
    assert error_code(response) in {"pickup_code_invalid", "validation_error"}
    if typed:
        assert error_code(response) == "pickup_code_invalid"
    assert device.get(chat_url(anon_conversation)).status_code == 404


def test_a_code_may_be_typed_in_lower_case_with_spaces(owner, anon_conversation):
    code = make_code(owner, anon_conversation)
    typed = f" {code[:2]} {code[2:4]} {code[5:]} ".lower()
    assert redeem(new_device(), typed).status_code == 200


def test_wrong_guesses_are_rate_limited_per_session(owner, anon_conversation):
    # given a live code and a session that guessed wrong as often as allowed
    code = make_code(owner, anon_conversation)
    guesser = new_device()
    for _ in range(pickup.MAX_FAILURES):
        assert error_code(redeem(guesser, "2222-2222")) == "pickup_code_invalid"

    # when it tries again, even with the right code
    response = redeem(guesser, code)

    # then it is refused for a while, and says how long
    assert response.status_code == 429
    assert error_code(response) == "too_many_attempts"
    assert int(response["Retry-After"]) == pickup.FAILURE_WINDOW_SECONDS
    assert not ConversationGrant.objects.exists()
    # other sessions are not affected
    assert redeem(new_device(), code).status_code == 200


def test_only_a_hash_of_the_code_is_stored(owner, anon_conversation):
    # when
    code = make_code(owner, anon_conversation)

    # then no column holds the code in any spelling
    row = PickupCode.objects.values().get()
    stored = " ".join(str(value) for value in row.values())
    for spelling in (code, code.replace("-", ""), code.lower()):
        assert spelling not in stored
    assert re.fullmatch(r"[0-9a-f]{64}", row["code_hash"])
    assert row["code_hash"] == pickup.code_hash(code)


def test_a_newer_code_replaces_the_older(owner, anon_conversation):
    # given two codes made one after the other
    older = make_code(owner, anon_conversation)
    newer = make_code(owner, anon_conversation)

    # when / then the older one no longer works, the newer one does
    assert error_code(redeem(new_device(), older)) == "pickup_code_expired"
    assert redeem(new_device(), newer).status_code == 200


def test_only_the_owner_makes_codes(client, alice, alice_conversation, bob):
    url = code_url(alice_conversation)
    client.force_login(bob)
    response = client.post(url)
    assert response.status_code == 404 and error_code(response) == "conversation_not_found"
    assert new_device().post(url).status_code == 404
    client.force_login(alice)
    assert client.post(url).status_code == 201


def test_a_signed_in_owner_hands_on_to_an_anonymous_device(client, alice, alice_conversation):
    # given alice makes a code
    client.force_login(alice)
    code = make_code(client, alice_conversation)

    # when she types it on her phone, where she is not signed in
    phone = new_device()
    response = redeem(phone, code)

    # then the phone opens it
    assert response.status_code == 200
    assert phone.get(chat_url(alice_conversation)).status_code == 200


def test_the_owner_typing_their_own_code_keeps_it_usable(owner, anon_conversation):
    code = make_code(owner, anon_conversation)
    assert redeem(owner, code).json()["conversation_id"] == str(anon_conversation.public_id)
    assert not ConversationGrant.objects.exists()
    assert redeem(new_device(), code).status_code == 200


def test_the_code_never_reaches_the_log(owner, anon_conversation, caplog):
    # when a code is made, refused and redeemed
    with caplog.at_level(logging.DEBUG, logger="conversations.pickup"):
        code = make_code(owner, anon_conversation)
        redeem(new_device(), "2222-2222")
        redeem(new_device(), code)

    # then the log says so without the code
    messages = [r.getMessage() for r in caplog.records if r.name == "conversations.pickup"]
    assert messages == ["pickup code created", "pickup code refused", "pickup code redeemed"]
    everything = " ".join(str(vars(r)) for r in caplog.records)
    assert code not in everything and code.replace("-", "") not in everything


def test_granted_conversations_join_the_list_in_one_query(
    alice, bob, alice_conversation, anon_session, anon_conversation, django_assert_num_queries
):
    # given an anonymous session owning one conversation and granted alice's
    ConversationGrant.objects.create(
        conversation=alice_conversation, session_key=anon_session.session_key
    )
    anon = selectors.Actor(user_id=None, session_key=anon_session.session_key)

    # when / then both, once each, in one query
    with django_assert_num_queries(1):
        listed = list(selectors.conversation_list_for_actor(anon))
    assert sorted(c.pk for c in listed) == sorted([alice_conversation.pk, anon_conversation.pk])
    # a signed-in user whose session was granted their own conversation sees it only once
    alice_actor = selectors.Actor(user_id=alice.pk, session_key=anon_session.session_key)
    listed = list(selectors.conversation_list_for_actor(alice_actor))
    assert [c.pk for c in listed] == [alice_conversation.pk]
    # and one whose session was granted someone else's sees both
    bob_actor = selectors.Actor(user_id=bob.pk, session_key=anon_session.session_key)
    listed = list(selectors.conversation_list_for_actor(bob_actor))
    assert [c.pk for c in listed] == [alice_conversation.pk]
    bob_conversation = Conversation.objects.create(user=bob)
    listed = list(selectors.conversation_list_for_actor(bob_actor))
    assert sorted(c.pk for c in listed) == sorted([alice_conversation.pk, bob_conversation.pk])
    assert list(selectors.conversation_list_for_actor(selectors.Actor(None, ""))) == []


# --- the page for people ------------------------------------------------------------------------


def test_the_pickup_page_shows_a_form(client):
    response = client.get(reverse("conversations:pickup"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="code"' in page and "csrfmiddlewaretoken" in page


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("wrong", "doesn&#x27;t match any conversation"),
        ("expired", "has expired"),
        ("used", "already been used"),
    ],
)
def test_the_pickup_page_explains_a_refused_code(owner, anon_conversation, setup, message):
    # given a code that cannot work
    code = make_code(owner, anon_conversation)
    if setup == "wrong":
        code = "2222-2222"
    elif setup == "expired":
        PickupCode.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    else:
        redeem(new_device(), code)

    # when it is typed into the form
    response = new_device().post(reverse("conversations:pickup"), {"code": code})

    # then the form says why, in words, and keeps what was typed
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'role="alert"' in page and f'value="{code}"' in page
    assert "pickup_code_" not in page


def test_the_pickup_page_opens_the_conversation(owner, history):
    code = make_code(owner, history)
    device = new_device()
    response = device.post(reverse("conversations:pickup"), {"code": code})
    assert response.status_code == 302
    assert response["Location"] == chat_url(history)
    assert "hi there" in device.get(response["Location"]).content.decode()


def test_the_pickup_form_needs_its_csrf_token(owner, anon_conversation):
    code = make_code(owner, anon_conversation)
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(reverse("conversations:pickup"), {"code": code}).status_code == 403
    assert not ConversationGrant.objects.exists()


def test_the_chat_page_offers_the_hand_on_to_its_owner_only(owner, anon_conversation):
    page = owner.get(chat_url(anon_conversation)).content.decode()
    assert 'id="handoff-btn"' in page and "<dialog" in page
    assert reverse("conversations:pickup") in page
    code = make_code(owner, anon_conversation)
    device = new_device()
    redeem(device, code)
    page = device.get(chat_url(anon_conversation)).content.decode()
    assert 'id="handoff-btn"' not in page
