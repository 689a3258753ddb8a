"""The integration API's conversation endpoints: /api/v1/conversations..., keys, tenants,
idempotency, whole and streamed replies, end-user export and erasure."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test import AsyncClient, Client
from django.urls import reverse
from django.utils import timezone

from conftest import bearer
from conversations.models import (
    Conversation,
    EndUserDataRequest,
    Message,
    MessageRole,
    SlotValue,
)
from integrations.keys import api_key_revoke
from integrations.models import ApiKey, IdempotencyRecord
from testkit.scripted_llm import Script

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/api/v1/conversations"


def detail(conversation_id: object) -> str:
    return f"/api/v1/conversations/{conversation_id}"


def messages_url(conversation_id: object) -> str:
    return f"{detail(conversation_id)}/messages"


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == code
    return body


def async_headers(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


class KeyClient(AsyncClient):
    """An AsyncClient that sends the given headers with every request.

    (KeyClient(...) puts them in the WSGI-style defaults, which its ASGI scope
    turns into `http-authorization`: not the header a server sees.)
    """

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__()
        self.always = headers

    def generic(self, *args, headers=None, **kwargs):  # type: ignore[no-untyped-def,override]
        return super().generic(*args, headers={**self.always, **(headers or {})}, **kwargs)


async def body_of(response) -> bytes:  # type: ignore[no-untyped-def]
    if getattr(response, "streaming", False):
        return b"".join([chunk async for chunk in response.streaming_content])
    return response.content


def parse_events(raw: bytes) -> list[tuple[int | None, str, dict]]:
    """[(id, event name, data)] of an SSE body (comments and retry lines skipped)."""
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            event_id = int(fields["id"]) if "id" in fields else None
            events.append((event_id, fields["event"], json.loads(fields["data"])))
    return events


# --- Keys and tenants ---------------------------------------------------------------------------


def test_a_key_creates_lists_reads_and_closes_its_conversations(client, alice, make_api_key):
    # given
    auth = bearer(make_api_key(alice, scopes=["chat"]))

    # when
    made = client.post(
        LIST, {"title": "Order", "end_user": "crm-1"}, content_type="application/json", **auth
    )

    # then
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["title"] == "Order" and body["end_user"] == "crm-1"
    assert body["state"] == "waiting_input" and body["closed_at"] is None
    conversation = Conversation.objects.get(public_id=body["id"])
    assert conversation.user == alice and conversation.session_key == ""
    assert client.get(detail(body["id"]), **auth).json() == body
    listed = client.get(LIST, **auth).json()
    assert [c["id"] for c in listed["results"]] == [body["id"]]

    closed = client.post(f"{detail(body['id'])}/close", **auth)
    assert closed.status_code == 200 and closed.json()["closed_at"]
    # closing again changes nothing
    again = client.post(f"{detail(body['id'])}/close", **auth)
    assert again.json()["closed_at"] == closed.json()["closed_at"]


def test_lists_page_with_a_cursor(client, alice, make_api_key):
    auth = bearer(make_api_key(alice))
    for i in range(5):
        client.post(LIST, {"title": f"c{i}"}, content_type="application/json", **auth)

    first = client.get(LIST + "?limit=2", **auth).json()
    second = client.get(first["next"], **auth).json()
    third = client.get(second["next"], **auth).json()

    titles = [c["title"] for page in (first, second, third) for c in page["results"]]
    assert titles == ["c4", "c3", "c2", "c1", "c0"]
    assert third["next"] is None
    assert_error(client.get(LIST + "?cursor=bogus", **auth), 404, "not_found")


def test_a_key_never_sees_another_tenants_conversation(client, alice, bob, make_api_key):
    # given alice's conversation and bob's key
    alices = Conversation.objects.create(user=alice, end_user="p1")
    reply = Message.objects.create(
        conversation=alices, sequence=2, role=MessageRole.ASSISTANT, text="secret"
    )
    auth = bearer(make_api_key(bob))

    # then every way in is "not found", and lists leave it out
    assert_error(client.get(detail(alices.public_id), **auth), 404, "conversation_not_found")
    assert_error(
        client.get(f"{detail(alices.public_id)}/state", **auth), 404, "conversation_not_found"
    )
    assert_error(client.get(messages_url(alices.public_id), **auth), 404, "conversation_not_found")
    assert_error(
        client.get(f"{messages_url(alices.public_id)}/{reply.public_id}", **auth),
        404,
        "conversation_not_found",
    )
    assert_error(
        client.get(f"{messages_url(alices.public_id)}/{reply.public_id}/events", **auth),
        404,
        "conversation_not_found",
    )
    assert_error(
        client.post(f"{detail(alices.public_id)}/close", **auth), 404, "conversation_not_found"
    )
    assert_error(
        client.post(
            messages_url(alices.public_id), {"text": "hi"}, content_type="application/json", **auth
        ),
        404,
        "conversation_not_found",
    )
    assert client.get(LIST, **auth).json()["results"] == []
    assert client.get(LIST + "?end_user=p1", **auth).json()["results"] == []
    # erasing "p1" as bob touches nothing of alice's
    erased = client.delete("/api/v1/end-users/p1", **auth).json()
    assert erased == {"end_user": "p1", "conversations": 0, "messages": 0}
    assert Conversation.objects.filter(pk=alices.pk).exists()
    assert Conversation.objects.get(pk=alices.pk).closed_at is None


def test_keys_are_checked_on_every_request(client, alice, make_api_key):
    raw = make_api_key(alice, scopes=["chat"])
    assert client.get(LIST, **bearer(raw)).status_code == 200

    # a wrong key, a malformed header
    response = client.get(LIST, **bearer("chs_not-a-real-key"))
    assert_error(response, 401, "api_key_invalid")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_error(client.get(LIST, HTTP_AUTHORIZATION="Bearer "), 401, "api_key_invalid")

    # revoked: refused from the next request on
    api_key_revoke(ApiKey.objects.get())
    assert_error(client.get(LIST, **bearer(raw)), 401, "api_key_revoked")


def test_an_expired_key_is_refused(client, alice, make_api_key):
    raw = make_api_key(alice, expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(client.get(LIST, **bearer(raw)), 401, "api_key_expired")


def test_a_key_without_the_chat_scope_is_refused(client, alice, make_api_key):
    auth = bearer(make_api_key(alice, scopes=["nlu"]))
    assert_error(client.get(LIST, **auth), 403, "scope_missing")
    assert_error(
        client.post(LIST, {}, content_type="application/json", **auth), 403, "scope_missing"
    )
    assert_error(client.get("/api/v1/end-users/x/export", **auth), 403, "scope_missing")


def test_end_user_data_needs_a_key_or_staff(client, alice):
    assert_error(client.get("/api/v1/end-users/x/export"), 401, "not_authenticated")
    client.force_login(alice)
    assert_error(client.delete("/api/v1/end-users/x"), 403, "staff_only")


def test_only_a_hash_of_the_key_is_stored(alice, make_api_key):
    raw = make_api_key(alice)
    stored = ApiKey.objects.get()
    assert raw not in json.dumps(
        {f.name: str(getattr(stored, f.attname)) for f in ApiKey._meta.fields}
    )
    assert raw.startswith(stored.prefix)


# --- Limits ---------------------------------------------------------------------------------------


def test_a_key_over_its_rate_limit_gets_429(client, alice, make_api_key):
    auth = bearer(make_api_key(alice, rate_limit=3))
    for _ in range(3):
        assert client.get(LIST, **auth).status_code == 200
    response = client.get(LIST, **auth)
    body = assert_error(response, 429, "throttled")
    assert 1 <= body["detail"]["retry_after"] <= 60
    assert int(response["Retry-After"]) == body["detail"]["retry_after"]


def test_the_rate_limit_holds_under_concurrency(alice, make_api_key):
    # given a limit of 10 and 24 requests at once from 8 threads
    auth = bearer(make_api_key(alice, rate_limit=10))
    statuses: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        c = Client()
        for _ in range(3):
            code = c.get(LIST, **auth).status_code
            with lock:
                statuses.append(code)
        connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then exactly 10 got through (a read-then-write counter lets more through)
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 10


def test_bodies_and_texts_over_their_limits_are_refused(client, alice, make_api_key, settings):
    auth = bearer(make_api_key(alice))
    settings.API_MAX_BODY_BYTES = 1000
    body = assert_error(
        client.post(LIST, {"title": "x" * 2000}, content_type="application/json", **auth),
        413,
        "request_too_large",
    )
    assert body["detail"] == {"limit": 1000}
    assert_error(
        client.post(LIST, "{", content_type="application/json", **auth), 400, "invalid_json"
    )
    assert_error(
        client.post(LIST, {"title": "a\x00b"}, content_type="application/json", **auth),
        400,
        "validation_error",
    )


# --- Idempotency ----------------------------------------------------------------------------


def test_a_retried_create_returns_the_first_response(client, alice, make_api_key):
    auth = {**bearer(make_api_key(alice)), "HTTP_IDEMPOTENCY_KEY": "create-1"}

    first = client.post(LIST, {"title": "once"}, content_type="application/json", **auth)
    again = client.post(LIST, {"title": "once"}, content_type="application/json", **auth)

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Conversation.objects.count() == 1
    # the same key with another body is a client bug
    assert_error(
        client.post(LIST, {"title": "other"}, content_type="application/json", **auth),
        422,
        "idempotency_key_reused",
    )
    assert_error(
        client.post(
            LIST, {}, content_type="application/json", **{**auth, "HTTP_IDEMPOTENCY_KEY": "a b"}
        ),
        400,
        "idempotency_key_invalid",
    )


def test_idempotency_keys_are_per_tenant(client, alice, bob, make_api_key):
    headers = {"HTTP_IDEMPOTENCY_KEY": "same"}
    a = client.post(
        LIST, {}, content_type="application/json", **bearer(make_api_key(alice)), **headers
    )
    b = client.post(
        LIST, {}, content_type="application/json", **bearer(make_api_key(bob)), **headers
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


def test_a_failed_request_does_not_keep_its_key(client, alice, make_api_key):
    auth = {**bearer(make_api_key(alice)), "HTTP_IDEMPOTENCY_KEY": "k"}
    assert_error(
        client.post(LIST, {"title": "x" * 300}, content_type="application/json", **auth),
        400,
        "validation_error",
    )
    assert not IdempotencyRecord.objects.exists()


def test_concurrent_retries_create_one_conversation(alice, make_api_key):
    auth = {**bearer(make_api_key(alice)), "HTTP_IDEMPOTENCY_KEY": "race"}
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def post() -> None:
        c = Client()
        start.wait()
        response = c.post(LIST, {"title": "race"}, content_type="application/json", **auth)
        with lock:
            results.append((response.status_code, response.json()))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Conversation.objects.count() == 1
    created = [body for code, body in results if code == 201]
    assert created and all(body == created[0] for body in created)
    # the others were told to retry while the first was running
    assert all(code in (201, 409) for code, _ in results)
    assert all(body["code"] == "idempotency_in_progress" for code, body in results if code == 409)


# --- Messages -----------------------------------------------------------------------------


@pytest.fixture
def alices_key(alice, make_api_key) -> str:  # type: ignore[no-untyped-def]
    return make_api_key(alice)


@pytest.fixture
def alices(alice) -> Conversation:  # type: ignore[no-untyped-def]
    return Conversation.objects.create(user=alice, end_user="crm-7")


@pytest.mark.usefixtures("hub_cleanup")
async def test_posting_a_message_returns_the_whole_reply(alices, alices_key, scripted_llm):
    # given
    scripted_llm.script = Script.words("Hello from the bot", token_delay=0.01)
    client = KeyClient(async_headers(alices_key))

    # when
    response = await client.post(
        messages_url(alices.public_id), {"text": "hi there"}, content_type="application/json"
    )

    # then
    assert response.status_code == 201
    body = json.loads(await body_of(response))
    assert body["message"]["text"] == "hi there" and body["message"]["role"] == "user"
    assert body["message"]["source"] == "api"
    assert body["reply"]["text"] == "Hello from the bot"
    assert body["reply"]["status"] == "complete" and body["reply"]["token_count"] == 4
    assert body["reply"]["reply_to"] == body["message"]["id"]
    listed = await client.get(messages_url(alices.public_id))
    assert [m["id"] for m in listed.json()["results"]] == [
        body["message"]["id"],
        body["reply"]["id"],
    ]
    one = await client.get(f"{messages_url(alices.public_id)}/{body['reply']['id']}")
    assert one.json()["text"] == "Hello from the bot"


@pytest.mark.usefixtures("hub_cleanup")
async def test_a_retried_message_returns_the_first_reply_and_calls_the_model_once(
    alices, alices_key, scripted_llm
):
    scripted_llm.script = Script.words("only once", token_delay=0.02)
    client = KeyClient({**async_headers(alices_key), "Idempotency-Key": "msg-1"})
    url = messages_url(alices.public_id)

    # when five copies race, then one more comes later
    responses = await asyncio.gather(
        *[client.post(url, {"text": "hello"}, content_type="application/json") for _ in range(5)]
    )
    bodies = [json.loads(await body_of(r)) for r in responses]
    later = await client.post(url, {"text": "hello"}, content_type="application/json")

    # then one turn, one model call, the same answer every time
    assert {r.status_code for r in responses} == {201}
    assert all(b == bodies[0] for b in bodies)
    assert later.status_code == 201 and json.loads(await body_of(later)) == bodies[0]
    assert bodies[0]["reply"]["text"] == "only once"
    assert len(scripted_llm.requests) == 1
    assert await Message.objects.filter(conversation=alices).acount() == 2
    # the same key with another text is refused
    other = await client.post(url, {"text": "bye"}, content_type="application/json")
    assert_error(other, 422, "idempotency_key_reused")


@pytest.mark.usefixtures("hub_cleanup")
async def test_a_reply_streams_as_server_sent_events_and_resumes(alices, alices_key, scripted_llm):
    # given
    words = "one two three four five six seven eight"
    scripted_llm.script = Script.words(words, token_delay=0.02)
    client = KeyClient(async_headers(alices_key))

    # when
    response = await client.post(
        messages_url(alices.public_id),
        {"text": "count"},
        content_type="application/json",
        headers={"Accept": "text/event-stream"},
    )

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    events = parse_events(await body_of(response))
    assert events[0][1] == "message.ack" and events[0][0] == 0
    reply_id = events[0][2]["reply_id"]
    deltas = [e for e in events if e[1] == "message.delta"]
    assert "".join(t for _, _, d in deltas for t in d["tokens"]) == words
    ids = [e[0] for e in events if e[0] is not None]
    assert ids == sorted(ids)
    assert events[-1][1] == "message.done" and events[-1][2]["last_seq"] == 8

    # and a reconnect after token 3 gets tokens 4.. exactly once
    resumed = await client.get(
        f"{messages_url(alices.public_id)}/{reply_id}/events", headers={"Last-Event-ID": "3"}
    )
    again = parse_events(await body_of(resumed))
    tokens = [t for _, name, d in again if name == "message.delta" for t in d["tokens"]]
    assert "".join(tokens) == "four five six seven eight"
    assert again[-1][1] == "message.done" and again[-1][2]["last_seq"] == 8
    assert [e[0] for e in again if e[1] == "message.delta"][-1] == 8


@pytest.mark.usefixtures("hub_cleanup")
async def test_stream_param_and_a_resumed_post(alices, alices_key, scripted_llm):
    scripted_llm.script = Script.words("a b c d", token_delay=0.01)
    client = KeyClient({**async_headers(alices_key), "Idempotency-Key": "s-1"})
    url = messages_url(alices.public_id) + "?stream=true"

    first = parse_events(
        await body_of(await client.post(url, {"text": "go"}, content_type="application/json"))
    )
    # the same POST again with Last-Event-ID: only what came after it
    resumed = parse_events(
        await body_of(
            await client.post(
                url, {"text": "go"}, content_type="application/json", headers={"Last-Event-ID": "2"}
            )
        )
    )

    assert first[0][2]["duplicate"] is False and resumed[0][2]["duplicate"] is True
    tokens = [t for _, n, d in resumed if n == "message.delta" for t in d["tokens"]]
    assert tokens == ["c ", "d"]
    assert resumed[-1][1] == "message.done"
    assert len(scripted_llm.requests) == 1


@pytest.mark.usefixtures("hub_cleanup")
async def test_message_errors_use_the_websocket_codes(alices, alices_key, settings):
    client = KeyClient(async_headers(alices_key))
    url = messages_url(alices.public_id)
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    assert_error(
        await client.post(url, {"text": "   "}, content_type="application/json"),
        400,
        "empty_message",
    )
    assert_error(
        await client.post(url, {"text": "x" * 11}, content_type="application/json"),
        400,
        "message_too_long",
    )
    assert_error(
        await client.post(url, {}, content_type="application/json"), 400, "validation_error"
    )
    await sync_to_async(Conversation.objects.filter(pk=alices.pk).update)(closed_at=timezone.now())
    assert_error(
        await client.post(url, {"text": "hello"}, content_type="application/json"),
        409,
        "conversation_closed",
    )
    missing = f"{url}/{uuid.uuid4()}/events"
    assert_error(await client.get(missing), 404, "not_found")


# --- One end user's data ---------------------------------------------------------------------


def test_an_end_users_data_is_exported_and_erased_with_a_record(client, alice, alices, alices_key):
    # given two conversations of crm-7, one with a personal slot, and someone else's
    other = Conversation.objects.create(user=alice, end_user="crm-8")
    second = Conversation.objects.create(user=alice, end_user="crm-7")
    Message.objects.create(conversation=alices, sequence=1, role=MessageRole.USER, text="hi")
    SlotValue.objects.create(
        conversation=alices, name="phone", kind="phone", value="13912345678", masked="139****5678"
    )
    auth = bearer(alices_key)

    # when
    exported = client.get("/api/v1/end-users/crm-7/export", **auth)

    # then
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith("attachment;")
    data = exported.json()
    assert {c["id"] for c in data["conversations"]} == {
        str(alices.public_id),
        str(second.public_id),
    }
    first = next(c for c in data["conversations"] if c["id"] == str(alices.public_id))
    assert first["slots"] == [{"name": "phone", "kind": "phone", "value": "13912345678"}]
    assert [m["text"] for m in first["messages"]] == ["hi"]

    # when
    erased = client.delete("/api/v1/end-users/crm-7", **auth)

    # then
    assert erased.json() == {"end_user": "crm-7", "conversations": 2, "messages": 1}
    assert list(Conversation.objects.all()) == [other]
    assert not SlotValue.objects.exists()
    records = list(
        EndUserDataRequest.objects.order_by("at", "pk").values_list(
            "action", "end_user", "conversations"
        )
    )
    assert records == [("export", "crm-7", 2), ("erase", "crm-7", 2)]
    assert EndUserDataRequest.objects.first().requested_by.startswith("api key test key")


@pytest.mark.usefixtures("hub_cleanup")
async def test_a_cancelled_turn_keeps_what_was_said_and_ends_interrupted(
    alices, alices_key, scripted_llm
):
    # given a slow reply streaming to a client
    from conversations.turns import turn_cancel

    scripted_llm.script = Script.words("one two three four five six seven eight", token_delay=0.1)
    client = KeyClient(async_headers(alices_key))
    response = await client.post(
        messages_url(alices.public_id) + "?stream=true",
        {"text": "go"},
        content_type="application/json",
    )
    received = b""
    reply_id = None
    cancelled = False

    # when the turn is cancelled after its first tokens (as a voice barge-in does)
    async for chunk in response.streaming_content:
        received += chunk
        events = parse_events(received)
        if reply_id is None and events:
            reply_id = events[0][2]["reply_id"]
        if not cancelled and any(name == "message.delta" for _, name, _ in events):
            cancelled = turn_cancel(reply_id, reason="barge_in")

    # then the stream ends with the reply interrupted, its first words kept
    events = parse_events(received)
    done = events[-1][2]
    assert cancelled and events[-1][1] == "message.done"
    assert done["status"] == "interrupted" and done["error_code"] == "barge_in"
    reply = await Message.objects.aget(public_id=reply_id)
    assert reply.status == "interrupted" and reply.error_code == "barge_in"
    assert reply.text and len(reply.text.split()) < 8
    assert turn_cancel(reply_id, reason="barge_in") is False  # nothing runs any more


def test_the_api_documents_itself_without_a_cdn(client):
    # Swagger UI and ReDoc come from our own static files
    for name in ("api:docs", "api:redoc"):
        page = client.get(reverse(name)).content.decode()
        assert "drf_spectacular_sidecar" in page
        assert "cdn." not in page and "unpkg" not in page and "jsdelivr" not in page

    # and every operation shows its answers with examples (and its request body, if any)
    schema = client.get(reverse("api:schema") + "?format=json").json()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            ok = next(iter(c for s, c in operation["responses"].items() if s.startswith("2")))
            content = ok.get("content", {})  # empty: 204 No Content
            if content and not any("examples" in media for media in content.values()):
                missing.append(f"{method.upper()} {path} response")
            body = operation.get("requestBody", {}).get("content", {})
            if body and not any("examples" in media for media in body.values()):
                missing.append(f"{method.upper()} {path} request")
    assert missing == []


@pytest.mark.usefixtures("hub_cleanup")
@pytest.mark.skipif(not settings.REDIS_URL, reason="the stream log is in Redis only with REDIS_URL")
async def test_erasure_also_drops_the_replies_stream_logs(alices, alices_key, scripted_llm):
    import redis.asyncio as aioredis

    from conversations.streams import log_key

    scripted_llm.script = Script.words("remember me")
    client = KeyClient(async_headers(alices_key))
    body = json.loads(
        await body_of(
            await client.post(
                messages_url(alices.public_id), {"text": "hi"}, content_type="application/json"
            )
        )
    )
    r = aioredis.Redis.from_url(settings.REDIS_URL)
    key = log_key(body["reply"]["id"])
    for _ in range(50):  # the writer batches: wait for it
        if await r.exists(key):
            break
        await asyncio.sleep(0.05)
    assert await r.exists(key)

    await client.delete("/api/v1/end-users/crm-7")

    assert not await r.exists(key)
    await r.aclose()


def test_old_idempotency_records_are_purged(client, alice, make_api_key, settings):
    from integrations.tasks import purge_idempotency_records_task

    auth = {**bearer(make_api_key(alice)), "HTTP_IDEMPOTENCY_KEY": "old"}
    client.post(LIST, {}, content_type="application/json", **auth)
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    client.post(
        LIST, {}, content_type="application/json", **{**auth, "HTTP_IDEMPOTENCY_KEY": "new"}
    )

    assert purge_idempotency_records_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
