"""Outbound webhooks: signing, emitting after commit, delivering to a real local receiver,
retries, the admin, a real Celery worker, and a real chat turn."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from conversations import services
from conversations.dialogue import Decision
from conversations.models import Conversation
from conversations.tests.wsclient import communicator_for, receive_until
from integrations import webhooks
from integrations.models import (
    Webhook,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEvent,
)
from integrations.tasks import (
    deliver_webhook_task,
    purge_webhook_deliveries_task,
    requeue_webhook_deliveries_task,
)
from integrations.webhooks import sign, signature_header, verify_signature
from testkit.processes import start_celery_worker
from testkit.scripted_llm import Script

MESSAGE_CREATED = WebhookEvent.MESSAGE_CREATED.value
LOW_CONFIDENCE = WebhookEvent.INTENT_LOW_CONFIDENCE.value
CLOSED = WebhookEvent.CONVERSATION_CLOSED.value


# --- A receiver on loopback -----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    # lower-cased names
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server in a thread that records every POST and answers from a script."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    # (status, seconds to wait before answering, extra headers) per request; then 200 forever.
    answers: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)

    def answer(self, *statuses: int, delay: float = 0.0, **headers: str) -> None:
        self.answers.extend((status, delay, headers) for status in statuses)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                headers = {name.lower(): value for name, value in self.headers.items()}
                state.requests.append(Received(self.path, headers, body))
                status, delay, extra = state.answers.pop(0) if state.answers else (200, 0.0, {})
            time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/chatsite"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def make_webhook(db):  # type: ignore[no-untyped-def]
    def make(url: str = "https://example.invalid/hook", **kwargs: Any) -> Webhook:
        kwargs.setdefault("events", [MESSAGE_CREATED])
        return webhooks.webhook_save(Webhook(url=url, **kwargs))

    return make


@pytest.fixture
def queued(monkeypatch) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """Record what would be sent to Celery, instead of sending it."""
    jobs: list[tuple[int, int]] = []
    monkeypatch.setattr(webhooks, "_enqueue", lambda batch: jobs.extend(batch))
    return jobs


@pytest.fixture
def retries(monkeypatch) -> list[float]:  # type: ignore[no-untyped-def]
    """The countdowns the delivery task asks Celery to retry after (eager runs them at once)."""
    countdowns: list[float] = []
    original = deliver_webhook_task.retry

    def recording(*args: Any, **kwargs: Any) -> Any:
        countdowns.append(kwargs["countdown"])
        return original(*args, **kwargs)

    monkeypatch.setattr(deliver_webhook_task, "retry", recording)
    return countdowns


def _emit(event: str = MESSAGE_CREATED, owner_id: int | None = None, **payload: Any) -> None:
    webhooks.webhook_emit(event, owner_id=owner_id, payload=payload or {"n": 1})


def _emit_and_fail() -> None:
    with transaction.atomic():
        _emit(n=1)
        raise RuntimeError("the change failed")


def _pending_delivery(webhook: Webhook, **fields: Any) -> WebhookDelivery:
    fields.setdefault("next_attempt_at", timezone.now())
    return WebhookDelivery.objects.create(
        webhook=webhook, event=MESSAGE_CREATED, payload={"hello": "world"}, **fields
    )


# --- Signatures -----------------------------------------------------------------------------------


def test_a_signature_verifies_and_tampering_does_not():
    # given a signed body
    secret, body, now = "s3cret", b'{"id":"1","data":{"text":"hi"}}', 1_800_000_000
    header = signature_header(secret, now, body)

    # then it verifies, and any change makes it fail
    assert header == f"t={now},v1={sign(secret, now, body)}"
    assert verify_signature(secret, header, body, now=now + 10)
    assert not verify_signature(secret, header, body.replace(b"hi", b"ho"), now=now)
    assert not verify_signature("other", header, body, now=now)
    assert not verify_signature(secret, header.replace(f"t={now}", f"t={now + 1}"), body, now=now)


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        ("t={t},v1={sig}", True),
        ("v1={sig},t={t}", True),  # order does not matter
        ("t={t},v1=deadbeef,v1={sig}", True),  # several signatures: one is enough
        ("t={t}", False),
        ("v1={sig}", False),
        ("t=abc,v1={sig}", False),
        ("t=²,v1={sig}", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_a_malformed_signature_header_is_refused(header, valid):
    # given
    secret, body, now = "s3cret", b"{}", 1_800_000_000
    value = header.format(t=now, sig=sign(secret, now, body))

    # when / then
    assert verify_signature(secret, value, body, now=now) is valid


@pytest.mark.parametrize(("age", "valid"), [(0, True), (299, True), (301, False), (-301, False)])
def test_an_old_or_future_timestamp_is_refused(age, valid):
    # given a request signed `age` seconds before now
    secret, body, now = "s3cret", b"{}", 1_800_000_000
    header = signature_header(secret, now - age, body)

    # then only one within the tolerance passes
    assert verify_signature(secret, header, body, now=now, tolerance_seconds=300) is valid


# --- Webhooks and emitting ------------------------------------------------------------------------


def test_a_new_webhook_gets_a_secret_and_unknown_events_are_refused(make_webhook):
    # when
    first = make_webhook(events=[LOW_CONFIDENCE, MESSAGE_CREATED, MESSAGE_CREATED])
    second = make_webhook()

    # then each has its own long random secret; events are deduplicated in a stable order
    assert len(first.secret) >= 43 and first.secret != second.secret
    assert first.events == [MESSAGE_CREATED, LOW_CONFIDENCE]
    with pytest.raises(ValueError, match="unknown"):
        make_webhook(events=["message.deleted"])
    with pytest.raises(ValueError, match="unknown"):
        webhooks.webhook_emit("message.deleted", owner_id=None, payload={})


@pytest.mark.parametrize(("owner", "expected"), [("alice", {"all", "alice's"}), (None, {"all"})])
def test_an_event_reaches_active_webhooks_for_it_and_its_owner_only(
    make_webhook, alice, bob, queued, django_capture_on_commit_callbacks, owner, expected
):
    # given webhooks for everyone, for alice, for bob, inactive, and for another event
    make_webhook(description="all")
    make_webhook(description="alice's", owner=alice)
    make_webhook(description="bob's", owner=bob)
    make_webhook(description="inactive", is_active=False)
    make_webhook(description="other event", events=[CLOSED])
    owner_id = alice.pk if owner == "alice" else None

    # when an event about alice's (or an anonymous) conversation is emitted and committed
    with django_capture_on_commit_callbacks(execute=True):
        _emit(owner_id=owner_id, text="hi")

    # then exactly the matching webhooks get a delivery, each queued once
    deliveries = list(WebhookDelivery.objects.select_related("webhook"))
    assert {d.webhook.description for d in deliveries} == expected
    assert all(d.payload == {"text": "hi"} and d.status == "pending" for d in deliveries)
    assert sorted(queued) == sorted((d.pk, 1) for d in deliveries)


def test_nothing_is_stored_or_sent_before_commit_or_after_a_rollback(
    make_webhook, queued, django_capture_on_commit_callbacks
):
    # given
    make_webhook()

    # when one event is emitted in a transaction that rolls back, another in one that commits
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            _emit_and_fail()
        with transaction.atomic():
            _emit(n=2)
        # then nothing exists until the commit...
        assert not WebhookDelivery.objects.exists()
    assert len(callbacks) == 1

    # ...and the committed event only is delivered after it
    callbacks[0]()
    assert [d.payload for d in WebhookDelivery.objects.all()] == [{"n": 2}]
    assert len(queued) == 1


def test_an_event_nobody_listens_to_costs_one_query_and_builds_nothing(
    make_webhook, queued, django_capture_on_commit_callbacks, django_assert_num_queries
):
    # given webhooks, none for this event
    make_webhook(events=[CLOSED])
    built: list[int] = []

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        webhooks.webhook_emit_lazy(MESSAGE_CREATED, lambda: built.append(1) or (None, {}))
        _emit()
    with django_assert_num_queries(2):  # one per event
        for callback in callbacks:
            callback()

    # then
    assert built == [] and queued == []
    assert not WebhookDelivery.objects.exists()


def test_a_failing_emit_does_not_fail_the_committed_change(
    make_webhook, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    # given a broker that is down
    make_webhook()

    def broker_down(batch: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(webhooks, "_enqueue", broker_down)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        _emit()

    # then the delivery waits for the sweeper, and the failure is logged
    assert WebhookDelivery.objects.get().status == "pending"
    assert "webhook event could not be queued" in caplog.text


# --- Delivering to a real receiver ----------------------------------------------------------------


def test_a_delivery_is_a_signed_json_post(
    make_webhook, receiver, eager_celery, django_capture_on_commit_callbacks
):
    # given
    hook = make_webhook(url=receiver.url)

    # when an event is emitted, committed and (eagerly) delivered
    with django_capture_on_commit_callbacks(execute=True):
        _emit(conversation_id="c-1", text="hi ✓")

    # then the receiver got one POST it can verify
    (request,) = receiver.requests
    delivery = WebhookDelivery.objects.get()
    headers = request.headers
    assert request.path == "/hooks/chatsite"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "chatsite-webhooks/1"
    assert headers["chatsite-event"] == MESSAGE_CREATED
    assert headers["chatsite-delivery"] == str(delivery.public_id)
    assert verify_signature(hook.secret, headers["chatsite-signature"], request.body)
    assert not verify_signature("wrong", headers["chatsite-signature"], request.body)
    assert request.json() == {
        "id": str(delivery.public_id),
        "event": MESSAGE_CREATED,
        "created_at": delivery.created_at.isoformat(),
        "data": {"conversation_id": "c-1", "text": "hi ✓"},
    }
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.last_error == ""
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None


def test_a_failed_attempt_is_recorded_with_its_next_time(make_webhook, receiver):
    # given
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(500)

    # when one attempt is made
    before = timezone.now()
    outcome = webhooks.deliver(delivery.pk)

    # then it will be retried, and the row says when and why
    delivery.refresh_from_db()
    assert outcome.status == "pending" and outcome.status_code == 500
    assert 8 <= outcome.retry_in <= 10
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
    waited = (delivery.next_attempt_at - before).total_seconds()
    assert 8 <= waited <= 11


def test_server_errors_are_retried_with_growing_backoff_until_success(
    make_webhook, receiver, eager_celery, retries
):
    # given a receiver that fails three times, then accepts
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(500, 503, 502)

    # when the task runs (eagerly: each retry runs at once, the countdowns are recorded)
    deliver_webhook_task.delay(delivery.pk, 1)

    # then four attempts, each wait about twice the one before, the same body every time
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 4
    assert delivery.last_status_code == 200
    assert len(retries) == 3
    assert retries == sorted(retries) and len(set(retries)) == 3
    for n, countdown in enumerate(retries):
        assert 10 * 2**n * 0.8 <= countdown <= 10 * 2**n
    assert len({r.body for r in receiver.requests}) == 1
    assert {r.headers["chatsite-delivery"] for r in receiver.requests} == {str(delivery.public_id)}


def test_the_backoff_is_capped_at_an_hour():
    # when / then
    delays = [webhooks.retry_delay(n) for n in range(1, 15)]
    assert all(d <= 3600 for d in delays)
    assert webhooks.retry_delay(14) >= 3600 * 0.8


def test_a_delivery_fails_after_the_last_attempt(
    make_webhook, receiver, eager_celery, retries, settings
):
    # given
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(500, 500, 500, 500)

    # when
    deliver_webhook_task.delay(delivery.pk, 1)

    # then three attempts, then it gave up
    delivery.refresh_from_db()
    assert len(receiver.requests) == 3 and len(retries) == 2
    assert delivery.status == "failed" and delivery.attempts == 3
    assert delivery.last_error == "HTTP 500" and delivery.next_attempt_at is None


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_client_error_is_a_permanent_failure(
    make_webhook, receiver, eager_celery, retries, status
):
    # given
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(status)

    # when
    deliver_webhook_task.delay(delivery.pk, 1)

    # then one attempt, no retry
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1 and retries == []
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.last_status_code == status and delivery.last_error == f"HTTP {status}"


@pytest.mark.parametrize("status", [408, 429])
def test_busy_answers_are_retried(make_webhook, receiver, status):
    # given
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(status)

    # when
    outcome = webhooks.deliver(delivery.pk)

    # then
    assert outcome.status == "pending" and outcome.retry_in is not None


def test_a_redirect_is_not_followed(make_webhook, receiver):
    # given a receiver that redirects elsewhere
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(302, Location=receiver.url + "/moved")

    # when
    outcome = webhooks.deliver(delivery.pk)

    # then only the registered URL was asked, and staff are told why it failed
    assert [r.path for r in receiver.requests] == ["/hooks/chatsite"]
    assert outcome.status == "failed" and outcome.status_code == 302
    delivery.refresh_from_db()
    assert "redirects are not followed" in delivery.last_error


def test_a_slow_receiver_times_out_and_is_retried(make_webhook, receiver, monkeypatch):
    # given a receiver slower than the timeout
    monkeypatch.setattr(webhooks, "TIMEOUT", 0.3)
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    receiver.answer(200, delay=2.0)

    # when
    started = time.monotonic()
    outcome = webhooks.deliver(delivery.pk)

    # then the attempt ended at the timeout and will be retried
    assert time.monotonic() - started < 1.5
    assert outcome.status == "pending" and outcome.status_code is None
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("timeout") and delivery.last_status_code is None
    assert "Traceback" not in delivery.last_error


def test_an_unreachable_receiver_is_retried_with_a_short_reason(make_webhook):
    # given a port nobody listens on
    from testkit.processes import free_port

    delivery = _pending_delivery(make_webhook(url=f"http://127.0.0.1:{free_port()}/x"))

    # when
    outcome = webhooks.deliver(delivery.pk)

    # then
    delivery.refresh_from_db()
    assert outcome.status == "pending"
    assert delivery.last_error.startswith("ConnectError") and len(delivery.last_error) <= 200


def test_a_delivery_is_sent_once_however_often_its_task_runs(make_webhook, receiver, eager_celery):
    # given a delivery already sent
    delivery = _pending_delivery(make_webhook(url=receiver.url))
    deliver_webhook_task.delay(delivery.pk, 1)

    # when its task runs again (a duplicate message), also for a later attempt
    deliver_webhook_task.delay(delivery.pk, 1)
    deliver_webhook_task.delay(delivery.pk, 2)
    outcome = webhooks.deliver(delivery.pk)

    # then it was sent once
    assert len(receiver.requests) == 1
    assert outcome.status == "skipped"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1


def test_two_runners_of_one_attempt_send_once(make_webhook, receiver):
    # given a delivery whose first attempt another runner has claimed
    delivery = _pending_delivery(make_webhook(url=receiver.url), attempts=1)

    # when a duplicate of that attempt runs
    outcome = webhooks.deliver(delivery.pk, attempt=1)

    # then it does nothing
    assert outcome.status == "skipped" and receiver.requests == []


def test_a_deactivated_webhook_gets_nothing_more(make_webhook, receiver):
    # given a delivery queued before its webhook was switched off
    hook = make_webhook(url=receiver.url)
    delivery = _pending_delivery(hook)
    Webhook.objects.filter(pk=hook.pk).update(is_active=False)

    # when
    outcome = webhooks.deliver(delivery.pk)

    # then
    assert outcome.status == "failed" and receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.last_error == "webhook is inactive"


# --- Housekeeping ---------------------------------------------------------------------------------


def test_overdue_deliveries_are_queued_again_once(make_webhook, receiver, eager_celery):
    # given a delivery whose task was lost ten minutes ago, and one merely waiting
    hook = make_webhook(url=receiver.url)
    lost = _pending_delivery(
        hook, attempts=2, next_attempt_at=timezone.now() - timedelta(minutes=10)
    )
    waiting = _pending_delivery(
        hook, attempts=1, next_attempt_at=timezone.now() + timedelta(seconds=20)
    )

    # when the sweeper runs twice
    first = requeue_webhook_deliveries_task()
    second = requeue_webhook_deliveries_task()

    # then the lost one was sent (as its third attempt), the waiting one left to its task
    assert (first, second) == (1, 0)
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert lost.status == "succeeded" and lost.attempts == 3
    assert waiting.status == "pending" and waiting.attempts == 1
    assert len(receiver.requests) == 1


def test_old_deliveries_are_purged(make_webhook, settings):
    # given
    settings.WEBHOOK_KEEP_DAYS = 30
    hook = make_webhook()
    old = _pending_delivery(hook)
    recent = _pending_delivery(hook)
    WebhookDelivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    # when
    purged = purge_webhook_deliveries_task()

    # then
    assert purged == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [recent.pk]
    assert purge_webhook_deliveries_task() == 0


# --- Emission points in the chat domain -----------------------------------------------------------


def _turn(conversation: Conversation, text: str = "hello") -> services.TurnStarted:
    return services.turn_start(conversation_id=conversation.pk, text=text, client_id=uuid.uuid4())


def _finish(started: services.TurnStarted, conversation: Conversation, text: str = "hi!") -> None:
    outcome = services.ReplyOutcome(
        text=text, status="complete", token_count=1, ttft_ms=1, total_ms=2
    )
    services.reply_finish(
        reply_id=started.reply.pk, conversation_id=conversation.pk, outcome=outcome
    )


def test_a_finished_reply_emits_message_created_to_its_owners_webhooks(
    alice_conversation, alice, bob, make_webhook, queued, django_capture_on_commit_callbacks
):
    # given webhooks of alice (the owner) and of bob
    make_webhook(owner=alice, description="alice's")
    make_webhook(owner=bob, description="bob's")
    started = _turn(alice_conversation, "call me on 13800138000")

    # when the reply is stored
    with django_capture_on_commit_callbacks(execute=True):
        _finish(started, alice_conversation, "Sure.")

    # then alice's webhook gets the stored (masked) texts
    delivery = WebhookDelivery.objects.select_related("webhook").get()
    assert delivery.webhook.description == "alice's" and delivery.event == MESSAGE_CREATED
    user, reply = started.user_message, started.reply
    user.refresh_from_db()
    assert delivery.payload == {
        "conversation_id": str(alice_conversation.public_id),
        "message": {
            "id": str(user.public_id),
            "sequence": user.sequence,
            "role": "user",
            "text": user.text,
            "intent": "",
            "created_at": user.created_at.isoformat(),
        },
        "reply": {
            "id": str(reply.public_id),
            "sequence": reply.sequence,
            "text": "Sure.",
            "status": "complete",
            "is_fallback": False,
            "error_code": "",
        },
    }
    assert "13800138000" not in json.dumps(delivery.payload)
    assert queued == [(delivery.pk, 1)]


def test_without_webhooks_a_finished_reply_costs_one_more_query_after_commit(
    anon_conversation, django_capture_on_commit_callbacks, django_assert_num_queries
):
    # given
    started = _turn(anon_conversation)

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        _finish(started, anon_conversation)

    # then the webhook check is one query, after the commit
    with django_assert_num_queries(1):
        for callback in callbacks:
            callback()


def test_closing_a_conversation_emits_conversation_closed_once(
    alice_conversation, alice, make_webhook, queued, django_capture_on_commit_callbacks
):
    # given
    make_webhook(owner=alice, events=[CLOSED])

    # when the conversation is closed, then closed again (a retry)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_close(conversation=alice_conversation)
        services.conversation_close(conversation=alice_conversation)

    # then one event
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == CLOSED
    assert delivery.payload["conversation_id"] == str(alice_conversation.public_id)


@pytest.mark.parametrize(
    ("source", "top", "emitted"),
    [("model", 0.31, True), ("llm", 0.1, True), ("model", 0.62, False), ("dialogue", 0.1, False)],
)
def test_an_unsure_classification_emits_intent_low_confidence(
    alice_conversation,
    alice,
    make_webhook,
    queued,
    django_capture_on_commit_callbacks,
    settings,
    source,
    top,
    emitted,
):
    # given
    settings.NLU_LOW_CONFIDENCE = 0.5
    make_webhook(owner=alice, events=[LOW_CONFIDENCE])
    started = _turn(alice_conversation, "hmm maybe pizza")
    recognised = services.HowRecognised(source, [("order_meal", top), ("greeting", 0.05)], 3)

    # when the dialogue stores its decision
    with django_capture_on_commit_callbacks(execute=True):
        services.dialogue_apply(
            conversation_id=alice_conversation.pk,
            reply_id=started.reply.pk,
            user_message_id=started.user_message.pk,
            decision=Decision(intent="", context={}, reason="template", reply_text="Pardon?"),
            history=[("user", "hmm maybe pizza")],
            recognised=recognised,
        )

    # then
    deliveries = list(WebhookDelivery.objects.all())
    assert len(deliveries) == (1 if emitted else 0)
    if emitted:
        assert deliveries[0].event == LOW_CONFIDENCE
        assert deliveries[0].payload == {
            "conversation_id": str(alice_conversation.public_id),
            "message_id": str(started.user_message.public_id),
            "text": "hmm maybe pizza",
            "top_intents": [
                {"intent": "order_meal", "confidence": top},
                {"intent": "greeting", "confidence": 0.05},
            ],
            "source": source,
            "intent": "",
        }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("hub_cleanup")
async def test_a_chat_turn_over_the_socket_delivers_message_created(
    anon_conversation, anon_session, scripted_llm, receiver, eager_celery
):
    # given a webhook for every conversation, and a real turn over the socket
    hook = await database_sync_to_async(webhooks.webhook_save)(
        Webhook(url=receiver.url, events=[MESSAGE_CREATED])
    )
    scripted_llm.script = Script.words("Hello from the bot")
    ws = communicator_for(anon_conversation, session_key=anon_session.session_key)
    connected, _ = await ws.connect()
    assert connected
    await ws.receive_from()  # hello

    # when
    await ws.send_json_to(
        {"type": "message.send", "text": "hi there", "client_id": str(uuid.uuid4())}
    )
    await receive_until(ws, "message.done")
    await ws.disconnect()

    # then the receiver got message.created with both texts, signed (eager Celery: the
    # delivery ran when the reply was stored, before message.done)
    (request,) = receiver.requests
    assert verify_signature(hook.secret, request.headers["chatsite-signature"], request.body)
    body = request.json()
    assert body["event"] == MESSAGE_CREATED
    assert body["data"]["conversation_id"] == str(anon_conversation.public_id)
    assert body["data"]["message"]["text"] == "hi there"
    assert body["data"]["reply"]["text"] == "Hello from the bot"
    assert body["data"]["reply"]["status"] == "complete"
    delivery = await database_sync_to_async(WebhookDelivery.objects.get)()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED


# --- The admin ------------------------------------------------------------------------------------


def test_staff_register_a_webhook_and_then_see_its_secret(admin_client, alice):
    # when staff add a webhook with two events ticked
    response = admin_client.post(
        reverse("admin:integrations_webhook_add"),
        {
            "url": "https://crm.example.com/hooks",
            "description": "CRM",
            "events": [MESSAGE_CREATED, CLOSED],
            "owner": alice.pk,
            "is_active": "on",
        },
    )

    # then it is stored with a secret, shown on its page
    assert response.status_code == 302, response.content.decode()[:2000]
    hook = Webhook.objects.get()
    assert hook.events == [MESSAGE_CREATED, CLOSED] and hook.owner == alice
    page = admin_client.get(reverse("admin:integrations_webhook_change", args=[hook.pk]))
    assert page.status_code == 200
    assert hook.secret in page.content.decode()
    assert 'type="checkbox" name="events"' in page.content.decode()


def test_the_webhook_list_shows_each_last_delivery_without_a_query_per_row(
    admin_client, make_webhook, django_assert_max_num_queries
):
    # given two webhooks with deliveries, the newest of the first one failed
    first, second = make_webhook(description="first"), make_webhook(description="second")
    _pending_delivery(first, status="succeeded", last_status_code=200)
    _pending_delivery(first, status="failed", last_status_code=410)
    _pending_delivery(second, status="succeeded", last_status_code=204)
    url = reverse("admin:integrations_webhook_changelist")
    admin_client.get(url)  # session and content types: warm

    # when
    with django_assert_max_num_queries(8) as captured:
        response = admin_client.get(url)

    # then each row shows its newest delivery
    page = response.content.decode()
    assert response.status_code == 200
    assert "failed (HTTP 410)" in page and "succeeded (HTTP 204)" in page
    # and ten more webhooks with deliveries cost no more queries
    for i in range(10):
        _pending_delivery(make_webhook(description=f"more {i}"), status="succeeded")
    with django_assert_max_num_queries(len(captured.captured_queries)):
        assert admin_client.get(url).content.decode().count(">more ") == 10


def test_the_delivery_list_and_page_render_read_only(admin_client, make_webhook):
    # given
    delivery = _pending_delivery(make_webhook(), status="failed", last_status_code=500)

    # when
    listing = admin_client.get(
        reverse("admin:integrations_webhookdelivery_changelist"), {"status": "failed"}
    )
    page = admin_client.get(
        reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk])
    )
    add = admin_client.get(reverse("admin:integrations_webhookdelivery_add"))
    searches = [
        admin_client.get(reverse("admin:integrations_webhookdelivery_changelist"), {"q": q})
        for q in ("example.invalid", str(delivery.public_id), "no such thing")
    ]

    # then
    assert listing.status_code == 200 and MESSAGE_CREATED in listing.content.decode()
    assert page.status_code == 200
    assert "&quot;hello&quot;: &quot;world&quot;" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert add.status_code == 403
    found = [r.content.decode().count(f"/{delivery.pk}/change/") > 0 for r in searches]
    assert [r.status_code for r in searches] == [200, 200, 200]
    assert found == [True, True, False]


def test_staff_redeliver_a_failed_delivery(
    admin_client, make_webhook, receiver, eager_celery, django_capture_on_commit_callbacks
):
    # given a delivery that failed for good
    delivery = _pending_delivery(
        make_webhook(url=receiver.url),
        status="failed",
        attempts=8,
        last_status_code=500,
        last_error="HTTP 500",
    )

    # when staff use "Redeliver now"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:integrations_webhookdelivery_changelist"),
            {"action": "redeliver", "_selected_action": [delivery.pk]},
        )

    # then it is sent again from the first attempt
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.last_error == ""
    assert len(receiver.requests) == 1


# --- A real Celery worker -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the Celery broker)")
def test_a_real_worker_delivers_a_webhook(receiver):
    # given a webhook and a real worker on the Redis broker
    hook = webhooks.webhook_save(Webhook(url=receiver.url, events=[CLOSED]))
    worker = start_celery_worker("celery")
    try:
        # when an event is emitted (autocommit: queued at once, not eager: a broker is set)
        assert settings.CELERY_TASK_ALWAYS_EAGER is False
        webhooks.webhook_emit(CLOSED, owner_id=None, payload={"conversation_id": "c-9"})

        # then the worker, a separate process, delivers it, signed
        (request,) = receiver.wait_for(1, timeout=60)
        delivery = WebhookDelivery.objects.get()
        deadline = time.monotonic() + 30
        while delivery.status == "pending" and time.monotonic() < deadline:
            time.sleep(0.2)
            delivery.refresh_from_db()
    finally:
        worker.terminate()
        worker.wait(30)
    assert verify_signature(hook.secret, request.headers["chatsite-signature"], request.body)
    assert request.json()["data"] == {"conversation_id": "c-9"}
    assert request.headers["chatsite-delivery"] == str(delivery.public_id)
    assert delivery.status == "succeeded" and delivery.attempts == 1
