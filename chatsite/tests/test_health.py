"""Probes: /healthz says the process lives, /readyz checks every dependency."""

from __future__ import annotations

import threading

import pytest
from django.test import AsyncClient

from chatsite import health
from nlu.classifier import serving

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_nlu_warm_up(settings):  # type: ignore[no-untyped-def]
    """Each test sees its own process start: nothing warmed yet."""
    settings.NLU_MODEL_CHECK_SECONDS = 0
    serving.reset()
    yield
    serving.reset()


async def test_healthz_answers():
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_green_when_everything_answers():
    response = await AsyncClient().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "cache", "channel_layer", "llm", "nlu"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["nlu"]["detail"] == "no model"


async def test_readyz_is_red_with_detail_when_the_llm_is_down(settings):
    # given an endpoint where nothing listens
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"

    # when
    response = await AsyncClient().get("/readyz")

    # then
    body = response.json()
    assert response.status_code == 503
    assert body["ready"] is False
    assert body["checks"]["llm"]["ok"] is False and body["checks"]["llm"]["error"]
    assert body["checks"]["database"]["ok"] is True


async def test_readyz_says_warming_until_the_intent_model_is_warm(monkeypatch, settings, tmp_path):
    # given a promoted model and a warm-up that takes until we let it finish
    from asgiref.sync import sync_to_async
    from channels.db import database_sync_to_async

    from nlu.tests.nlu_fixtures import serving_nlu_model

    settings.VAR_DIR = tmp_path
    row = await database_sync_to_async(serving_nlu_model)()
    release = threading.Event()
    real_warm_up = serving.warm_up

    def slow_warm_up() -> bool:
        release.wait(30)
        return real_warm_up()

    monkeypatch.setattr(serving, "warm_up", slow_warm_up)
    monkeypatch.setattr(health, "NLU_WARM_UP_WAIT", 0.05)

    # when the probe asks while the model is warming
    warming = await AsyncClient().get("/readyz")

    # then it is not ready, and says why
    body = warming.json()
    assert warming.status_code == 503, body
    assert body["checks"]["nlu"] == {
        "ok": False,
        "error": "NotReady",
        "detail": "nlu warming",
        "ms": body["checks"]["nlu"]["ms"],
    }
    assert body["checks"]["database"]["ok"] is True

    # and once the warm-up is done, it is ready with the model's version
    release.set()
    await sync_to_async(serving.start_warm_up().result)(30)
    ready = await AsyncClient().get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["nlu"]["detail"] == f"v{row.pk}"


async def test_readyz_retries_a_failed_warm_up(monkeypatch):
    # given a warm-up that fails once
    calls = []

    def failing_once() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return False

    monkeypatch.setattr(serving, "warm_up", failing_once)

    # when the probe asks twice
    first = await AsyncClient().get("/readyz")
    second = await AsyncClient().get("/readyz")

    # then the first says it failed, the second tried again and is ready
    assert first.json()["checks"]["nlu"]["detail"] == "nlu warm-up failed"
    assert second.status_code == 200, second.json()
    assert len(calls) == 2
