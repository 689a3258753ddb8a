"""Helpers for the NLU API tests: JSON requests with an API key, and the keys themselves."""

from __future__ import annotations

import json
from typing import Any

from conftest import bearer

API = "/api/v1"
_NO_BODY = object()


def call(
    client: Any,
    method: str,
    path: str,
    key: str | None = None,
    body: Any = _NO_BODY,
    *,
    raw: str | None = None,
    idempotency_key: str | None = None,
) -> Any:
    """`method` on API + `path` with `key` (a bearer key) and `body` as JSON (`raw`: as is).

    A GET sends no body (the test client would put it in the query string).
    """
    headers: dict[str, str] = bearer(key) if key else {}
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    kwargs: dict[str, Any] = {}
    if raw is not None:
        kwargs = {"data": raw, "content_type": "application/json"}
    elif body is not _NO_BODY and method != "get":
        kwargs = {"data": json.dumps(body), "content_type": "application/json"}
    elif method != "get":
        kwargs = {"data": "", "content_type": "application/json"}  # no body at all
    return getattr(client, method)(API + path, **kwargs, **headers)


def error_code(response: Any) -> str:
    """The stable code of an error response (and its shape checked on the way)."""
    body = response.json()
    assert set(body) == {"code", "message", "detail"}, body
    return str(body["code"])


def follow_pages(client: Any, path: str, key: str, limit: int) -> list[list[Any]]:
    """Every page of a list, following `next`; the results of each page."""
    pages: list[list[Any]] = []
    url: str | None = f"{API}{path}{'&' if '?' in path else '?'}limit={limit}"
    while url:
        response = client.get(url, **bearer(key))
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body["results"])
        url = body["next"]
    return pages
