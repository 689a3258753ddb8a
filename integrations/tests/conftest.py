"""The live-server fixture, shared with the conversations tests."""

from conversations.tests.conftest import daphne_server  # noqa: F401
