"""The chat pages: sessions own conversations, nobody sees anyone else's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db


def test_the_home_page_gives_a_new_visitor_a_session_and_an_empty_chat(client):
    response = client.get("/")
    assert response.status_code == 200
    assert client.session.session_key


def test_new_conversation_belongs_to_the_session_and_opens(client):
    client.get("/")
    response = client.post(reverse("conversations:new"))
    conversation = Conversation.objects.get()
    assert conversation.session_key == client.session.session_key
    assert response["Location"] == reverse(
        "conversations:chat", kwargs={"conversation_id": conversation.public_id}
    )
    assert client.get(response["Location"]).status_code == 200
    # and the home page now opens it
    assert client.get("/")["Location"] == response["Location"]


def test_the_page_shows_the_history(client):
    client.get("/")
    client.post(reverse("conversations:new"))
    conversation = Conversation.objects.get()
    Message.objects.create(conversation=conversation, sequence=1, role="user", text="<b>hi</b>")
    response = client.get(
        reverse("conversations:chat", kwargs={"conversation_id": conversation.public_id})
    )
    assert "&lt;b&gt;hi&lt;/b&gt;" in response.content.decode()


def test_another_sessions_conversation_is_a_404(client, anon_conversation):
    response = client.get(
        reverse("conversations:chat", kwargs={"conversation_id": anon_conversation.public_id})
    )
    assert response.status_code == 404


def test_a_user_sees_their_own_conversations(client, alice, alice_conversation, bob):
    client.force_login(alice)
    url = reverse("conversations:chat", kwargs={"conversation_id": alice_conversation.public_id})
    assert client.get(url).status_code == 200
    client.force_login(bob)
    assert client.get(url).status_code == 404


def test_new_conversation_needs_post(client):
    assert client.get(reverse("conversations:new")).status_code == 405
