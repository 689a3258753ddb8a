"""Voice tests reuse the chat's browser fixtures: a daphne server on the test database, pages."""

from conversations.tests.conftest import daphne_server, new_page  # noqa: F401
