"""GET /api/v1/conversations/<id>/state, the OpenAPI schema and the API's error shape."""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse

from conversations import selectors, services
from conversations.models import Conversation, ConversationGrant, Message

pytestmark = pytest.mark.django_db


def state_url(conversation: Conversation | uuid.UUID) -> str:
    public_id = conversation if isinstance(conversation, uuid.UUID) else conversation.public_id
    return reverse("api:conversation-state", kwargs={"conversation_id": public_id})


def session_client(session_key: str) -> Client:
    client = Client()
    client.cookies["sessionid"] = session_key
    return client


def add_messages(conversation: Conversation, count: int) -> None:
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            sequence=i,
            role="user" if i % 2 else "assistant",
            text=f"message {i}",
        )
        for i in range(1, count + 1)
    )


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == code
    assert body["message"]
    assert isinstance(body["detail"], dict)
    return body


def test_the_owner_sees_the_state_with_slots_masked(anon_session, anon_conversation):
    # given a conversation waiting for an address, with a personal slot and some history
    anon_conversation.intent = "order_meal"
    anon_conversation.context = {"awaiting": "address", "confirming": False}
    anon_conversation.save()
    services.slot_set(
        conversation_id=anon_conversation.pk,
        name="phone",
        kind="phone",
        value="13912345678",
        personal=True,
    )
    add_messages(anon_conversation, 3)

    # when its owner asks for the state
    response = session_client(anon_session.session_key).get(state_url(anon_conversation))

    # then everything is there, and the phone number only masked
    assert response.status_code == 200
    body = response.content.decode()
    assert "13912345678" not in body
    assert "139****5678" in body
    data = response.json()
    assert data["id"] == str(anon_conversation.public_id)
    assert data["state"] == "waiting_input"
    assert data["intent"] == "order_meal"
    assert data["awaiting_slot"] == "address"
    assert data["confirming"] is False
    assert data["last_active"]
    assert data["slots"] == [{"name": "phone", "kind": "phone", "value": "139****5678"}]
    assert [m["sequence"] for m in data["messages"]] == [1, 2, 3]
    first = data["messages"][0]
    assert set(first) == {
        "id",
        "role",
        "text",
        "sequence",
        "status",
        "is_fallback",
        "created_at",
    }
    assert first["role"] == "user" and first["text"] == "message 1"
    assert first["status"] == "complete" and first["is_fallback"] is False


def test_a_fresh_conversation_has_no_awaited_slot(client, alice, alice_conversation):
    # given a signed-in owner and a conversation with an empty context
    client.force_login(alice)

    # when
    data = client.get(state_url(alice_conversation)).json()

    # then
    assert data["awaiting_slot"] is None
    assert data["confirming"] is False
    assert data["slots"] == [] and data["messages"] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", list(range(11, 31))),  # the latest 20 by default, oldest first
        ("?messages=5", list(range(26, 31))),
        ("?messages=100", list(range(1, 31))),
        ("?messages=0", []),
    ],
)
def test_the_latest_messages_come_oldest_first(anon_session, anon_conversation, query, expected):
    # given 30 messages
    add_messages(anon_conversation, 30)

    # when
    response = session_client(anon_session.session_key).get(state_url(anon_conversation) + query)

    # then
    assert response.status_code == 200
    assert [m["sequence"] for m in response.json()["messages"]] == expected


@pytest.mark.parametrize("value", ["abc", "-1", "101", "2.5", "1e3"])
def test_a_bad_message_count_is_refused(anon_session, anon_conversation, value):
    response = session_client(anon_session.session_key).get(
        f"{state_url(anon_conversation)}?messages={value}"
    )
    error = assert_error(response, 400, "invalid_parameter")
    assert "messages" in error["detail"]["fields"]


@pytest.mark.parametrize("who", ["bob", "other_session", "no_session", "alice_unknown_id"])
def test_nobody_else_learns_anything_about_a_conversation(
    client, alice, bob, alice_conversation, who
):
    # given someone who does not own the conversation (or an id that does not exist)
    url = state_url(alice_conversation)
    if who == "bob":
        client.force_login(bob)
    elif who == "other_session":
        other = SessionStore()
        other.create()
        client = session_client(other.session_key)
    elif who == "alice_unknown_id":
        client.force_login(alice)
        url = state_url(uuid.uuid4())

    # when
    response = client.get(url)

    # then the same 404 for "not yours" and "does not exist"; with no identity at all, 401
    # whether it exists or not
    if who == "no_session":
        assert_error(response, 401, "not_authenticated")
        assert_error(client.get(state_url(uuid.uuid4())), 401, "not_authenticated")
        return
    error = assert_error(response, 404, "conversation_not_found")
    assert error["detail"] == {}


def test_an_anonymous_owner_loses_access_when_signed_in_as_someone_else(
    client, anon_session, anon_conversation, bob
):
    # a signed-in user sees their own conversations, not the anonymous session's ones
    client.force_login(bob)
    assert_error(client.get(state_url(anon_conversation)), 404, "conversation_not_found")


def test_a_session_with_a_grant_sees_the_state(alice_conversation):
    # given another browser session that was granted the conversation
    other = SessionStore()
    other.create()
    ConversationGrant.objects.create(conversation=alice_conversation, session_key=other.session_key)

    # when / then
    response = session_client(other.session_key).get(state_url(alice_conversation))
    assert response.status_code == 200
    assert response.json()["id"] == str(alice_conversation.public_id)


@pytest.mark.parametrize("size", [1, 60])
def test_the_state_costs_a_fixed_number_of_queries(
    anon_session, anon_conversation, django_assert_max_num_queries, size
):
    # given a conversation with many slots and messages
    add_messages(anon_conversation, size)
    for i in range(min(size, 5)):
        services.slot_set(
            conversation_id=anon_conversation.pk,
            name=f"slot{i}",
            kind="text",
            value=f"value {i}",
            personal=False,
        )
    client = session_client(anon_session.session_key)

    # then: session, conversation, slots, messages, whatever the size
    with django_assert_max_num_queries(4):
        response = client.get(state_url(anon_conversation) + "?messages=100")
    assert len(response.json()["messages"]) == size


def test_the_selector_reads_three_times(anon_session, anon_conversation, django_assert_num_queries):
    add_messages(anon_conversation, 10)
    actor = selectors.Actor(user_id=None, session_key=anon_session.session_key)
    with django_assert_num_queries(3):
        data = selectors.conversation_state_for_actor(
            anon_conversation.public_id, actor, message_limit=20
        )
        assert data is not None
        assert len(data.messages) == 10 and data.slots == []


def test_the_openapi_schema_lists_the_endpoints(client):
    # when
    response = client.get(reverse("api:schema") + "?format=json")

    # then
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["info"]["title"] == "chatsite API"
    paths = schema["paths"]
    assert "get" in paths["/api/v1/conversations/{conversation_id}/state"]
    assert "post" in paths["/api/v1/conversations/{conversation_id}/pickup-code"]
    assert "post" in paths["/api/v1/pickup"]
    state = paths["/api/v1/conversations/{conversation_id}/state"]["get"]
    assert {p["name"] for p in state["parameters"]} >= {"conversation_id", "messages"}
    assert {"200", "400", "404"} <= set(state["responses"])


def test_other_errors_have_the_same_shape(client, anon_session, anon_conversation):
    owner = session_client(anon_session.session_key)
    # a wrong method
    assert_error(owner.post(state_url(anon_conversation)), 405, "method_not_allowed")
    # a body that is not JSON
    assert_error(
        client.post(reverse("api:pickup-redeem"), "{", content_type="application/json"),
        400,
        "invalid_json",
    )
    # a body that does not validate
    error = assert_error(
        client.post(reverse("api:pickup-redeem"), {}, content_type="application/json"),
        400,
        "validation_error",
    )
    assert "code" in error["detail"]["fields"]
    # an /api/ URL that matches nothing
    assert_error(client.get("/api/nothing-here"), 404, "not_found")


def test_an_unexpected_error_is_json_without_a_stack_trace(
    anon_session, anon_conversation, monkeypatch
):
    # given a bug somewhere below the view
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "conversation_state_for_actor", broken)

    # when
    response = session_client(anon_session.session_key).get(state_url(anon_conversation))

    # then
    assert_error(response, 500, "internal_error")
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content


def test_a_cross_site_post_is_refused_even_without_a_signed_in_user(anon_session):
    # given an anonymous session and a request without the CSRF token
    client = Client(enforce_csrf_checks=True)
    client.cookies["sessionid"] = anon_session.session_key

    # when
    response = client.post(
        reverse("api:pickup-redeem"), {"code": "K7QF-M2XD"}, content_type="application/json"
    )

    # then
    assert_error(response, 403, "csrf_failed")
