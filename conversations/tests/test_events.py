"""Low-rate events reach sockets through the channel layer (channels-redis when REDIS_URL)."""

from __future__ import annotations

import json

import pytest
from channels.layers import get_channel_layer

from conversations.events import conversation_group
from conversations.tests.wsclient import communicator_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]


async def test_a_broadcast_reaches_every_socket_on_the_conversation(
    anon_conversation, anon_session, settings
):
    # given a socket on the conversation
    ws = communicator_for(anon_conversation, session_key=anon_session.session_key)
    assert (await ws.connect())[0]
    await ws.receive_from()  # hello

    # when a worker broadcasts (events.broadcast wraps this group_send for sync code)
    layer = get_channel_layer()
    await layer.group_send(
        conversation_group(str(anon_conversation.public_id)),
        {"type": "conversation.event", "payload": {"event": "title", "title": "Orders"}},
    )

    # then
    frame = json.loads(await ws.receive_from(timeout=5))
    assert frame == {"type": "conversation.event", "event": "title", "title": "Orders"}
    expected = "RedisChannelLayer" if settings.REDIS_URL else "InMemoryChannelLayer"
    assert type(layer).__name__ == expected
    await ws.disconnect()


def test_group_names_are_valid_for_channels(anon_conversation):
    name = conversation_group(str(anon_conversation.public_id))
    assert len(name) < 100 and name.isascii()
