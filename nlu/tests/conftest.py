"""Fixtures of the NLU tests: API keys of each scope for the integration API."""

from __future__ import annotations

import pytest


@pytest.fixture
def nlu_key(alice, make_api_key) -> str:  # type: ignore[no-untyped-def]
    """A key that may parse text, nothing else."""
    return str(make_api_key(alice, scopes=("nlu",)))


@pytest.fixture
def admin_key(alice, make_api_key) -> str:  # type: ignore[no-untyped-def]
    """A key that may manage intents, examples, sensitive words and models."""
    return str(make_api_key(alice, scopes=("admin-data",)))


@pytest.fixture
def chat_key(alice, make_api_key) -> str:  # type: ignore[no-untyped-def]
    """A key with the chat scope only: neither NLU nor admin data."""
    return str(make_api_key(alice, scopes=("chat",)))
