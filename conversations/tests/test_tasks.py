"""Tasks: called directly, twice (idempotent), and once through a real Celery worker."""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings
from django.utils import timezone

from conversations.models import Conversation, ConversationState, Message, MessageStatus
from conversations.tasks import recover_stale_replies_task
from testkit.processes import start_celery_worker


def _stuck_reply(conversation: Conversation, minutes_ago: int) -> Message:
    user = Message.objects.create(
        conversation=conversation, sequence=1, role="user", text="lost", client_id=uuid.uuid4()
    )
    reply = Message.objects.create(
        conversation=conversation, sequence=2, role="assistant", status="streaming", reply_to=user
    )
    Message.objects.filter(pk=reply.pk).update(
        updated_at=timezone.now() - timezone.timedelta(minutes=minutes_ago)
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        state=ConversationState.GENERATING, streaming_reply=reply
    )
    return reply


@pytest.mark.django_db
def test_stale_replies_are_recovered_once(anon_conversation, anon_session):
    # given one stale reply and one that is merely in progress
    stale = _stuck_reply(anon_conversation, minutes_ago=10)
    fresh_conversation = Conversation.objects.create(session_key=anon_session.session_key)
    fresh = _stuck_reply(fresh_conversation, minutes_ago=0)

    # when the task runs twice
    first = recover_stale_replies_task()
    second = recover_stale_replies_task()

    # then only the stale one was touched, once
    assert (first, second) == (1, 0)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == MessageStatus.INTERRUPTED and stale.error_code == "turn_stale"
    assert fresh.status == MessageStatus.STREAMING
    anon_conversation.refresh_from_db()
    assert anon_conversation.state == ConversationState.ERROR


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the Celery broker)")
def test_a_real_worker_runs_the_recovery(anon_conversation):
    # given a stale reply and a real worker on the Redis broker
    stale = _stuck_reply(anon_conversation, minutes_ago=10)
    worker = start_celery_worker("celery")
    try:
        # when the task is queued (not eager: a broker is configured)
        assert settings.CELERY_TASK_ALWAYS_EAGER is False
        recover_stale_replies_task.delay()

        # then the worker, a separate process, recovers it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stale.refresh_from_db()
            if stale.status == MessageStatus.INTERRUPTED:
                break
            time.sleep(0.5)
        assert stale.status == MessageStatus.INTERRUPTED
    finally:
        worker.terminate()
        worker.wait(30)
