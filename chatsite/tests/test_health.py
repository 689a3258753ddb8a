"""Probes: /healthz says the process lives, /readyz checks every dependency."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_healthz_answers():
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_green_when_everything_answers():
    response = await AsyncClient().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "cache", "channel_layer", "llm"}
    assert all(check["ok"] for check in body["checks"].values())


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
