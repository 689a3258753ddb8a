"""Shared fixtures: personas, the scripted OpenAI-compatible server, socket helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from conversations.models import Conversation
from testkit.scripted_llm import Script, ScriptedLlm


@pytest.fixture(scope="session")
def scripted_llm_server() -> Iterator[ScriptedLlm]:
    server = ScriptedLlm().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def scripted_llm(scripted_llm_server: ScriptedLlm, settings) -> ScriptedLlm:  # type: ignore[no-untyped-def]
    """Every test talks to the scripted server unless it says otherwise (fresh script each)."""
    scripted_llm_server.script = Script()
    scripted_llm_server.responder = None
    scripted_llm_server.requests.clear()
    settings.LLM_BASE_URL = scripted_llm_server.base_url
    settings.LLM_MODEL = "scripted"
    return scripted_llm_server


@pytest.fixture(autouse=True)
def _fresh_intent_labels(settings) -> None:  # type: ignore[no-untyped-def]
    """Each test starts with no cached intent labels (the cache may be a shared Redis)."""
    settings.NLU_CACHE_VERSION = uuid.uuid4().int % 2**31


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run tasks in-process for this test, as the embedded default does without a broker."""
    from chatsite.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(db):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_user("alice", "alice@example.com", "password")


@pytest.fixture
def bob(db):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_user("bob", "bob@example.com", "password")


@pytest.fixture
def anon_session(db) -> SessionStore:  # type: ignore[no-untyped-def]
    """An anonymous browser session, saved, as the chat page would make it."""
    session = SessionStore()
    session.create()
    return session


@pytest.fixture
def anon_conversation(anon_session: SessionStore) -> Conversation:
    return Conversation.objects.create(session_key=anon_session.session_key)


@pytest.fixture
def alice_conversation(alice) -> Conversation:  # type: ignore[no-untyped-def]
    return Conversation.objects.create(user=alice)


def new_client_id() -> str:
    return str(uuid.uuid4())


ORIGIN = (b"origin", b"http://localhost")


def redis_required() -> bool:
    return bool(settings.REDIS_URL)


@pytest.fixture
async def hub_cleanup():  # type: ignore[no-untyped-def]
    """Let turns finish, then close this test loop's stream hub (and its Redis connections)."""
    yield
    from conversations.streams import close_hub
    from conversations.turns import wait_for_running_turns

    await wait_for_running_turns()
    await close_hub()
    # The connection the async views and database_sync_to_async left open in asgiref's
    # thread-sensitive thread: closed, or PostgreSQL refuses to drop the test database.
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture(autouse=True)
def _fresh_system_prompt_cache():  # type: ignore[no-untyped-def]
    """Each test sees the system prompt its own settings and rows give."""
    from django.core.cache import cache

    from conversations.selectors import SYSTEM_PROMPT_CACHE_KEY

    cache.delete(SYSTEM_PROMPT_CACHE_KEY)
    yield
    cache.delete(SYSTEM_PROMPT_CACHE_KEY)


@pytest.fixture
def make_api_key(db):  # type: ignore[no-untyped-def]
    """make_api_key(owner, scopes=...) -> the raw key (all scopes unless told)."""
    from integrations.keys import api_key_create

    def make(owner, scopes=("chat", "nlu", "admin-data"), **kwargs):  # type: ignore[no-untyped-def]
        return api_key_create(owner=owner, name="test key", scopes=scopes, **kwargs).raw

    return make


def bearer(raw_key: str) -> dict[str, str]:
    """Django test-client headers that authenticate with an API key."""
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}
