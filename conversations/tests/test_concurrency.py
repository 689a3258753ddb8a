"""One turn at a time per conversation, even when two processes' sends race."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from conversations import services
from conversations.exceptions import TurnInProgress
from conversations.models import Message
from conversations.tests.wsclient import communicator_for, receive_until
from testkit.scripted_llm import Script


@pytest.mark.django_db(transaction=True)
def test_two_sends_at_once_from_separate_connections_start_one_turn(anon_conversation):
    # given two threads, each with its own database connection (as two server processes have)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def send(text: str) -> None:
        barrier.wait()
        try:
            results.append(
                services.turn_start(
                    conversation_id=anon_conversation.pk, text=text, client_id=uuid.uuid4()
                )
            )
        except TurnInProgress as exc:
            results.append(exc)
        finally:
            connection.close()

    # when both send at the same instant
    threads = [threading.Thread(target=send, args=(t,)) for t in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # then exactly one turn started and the other was refused with the documented code
    started = [r for r in results if isinstance(r, services.TurnStarted)]
    refused = [r for r in results if isinstance(r, TurnInProgress)]
    assert len(started) == 1 and len(refused) == 1
    assert refused[0].code == "turn_in_progress"
    assert Message.objects.filter(conversation=anon_conversation).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_cleanup")
async def test_two_tabs_sending_at_once_get_one_reply(
    anon_conversation, anon_session, scripted_llm
):
    # given two tabs on one conversation
    scripted_llm.script = Script.words("only one of you", token_delay=0.02)
    tabs = []
    for _ in range(2):
        tab = communicator_for(anon_conversation, session_key=anon_session.session_key)
        assert (await tab.connect())[0]
        await tab.receive_from()  # hello
        tabs.append(tab)

    # when both send a different message at once
    for tab, text in zip(tabs, ("from tab 1", "from tab 2"), strict=True):
        await tab.send_json_to(
            {"type": "message.send", "text": text, "client_id": str(uuid.uuid4())}
        )
    frames = [await receive_until(tab, "message.done") for tab in tabs]

    # then one model call; one tab got an ack, the other turn_in_progress; both saw the reply
    assert len(scripted_llm.requests) == 1
    kinds = [{f["type"] for f in tab_frames} for tab_frames in frames]
    assert sum("message.ack" in k for k in kinds) == 1
    errors = [f for tab_frames in frames for f in tab_frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["turn_in_progress"]
    assert all(tab_frames[-1]["status"] == "complete" for tab_frames in frames)
    for tab in tabs:
        await tab.disconnect()
