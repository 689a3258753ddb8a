"""Database helpers shared by the apps."""

from __future__ import annotations

from django.db import connection


class own_connection:  # noqa: N801 (used like a function)
    """Close the thread's database connection afterwards if this block opened it.

    For per-process checks (the serving intent model, the sensitive words) that may run on
    executor threads, whose connections Django never closes; a caller that already had a
    connection (a request, a task) keeps it.
    """

    def __enter__(self) -> None:
        self.opened = connection.connection is None

    def __exit__(self, *exc: object) -> None:
        if self.opened and not connection.in_atomic_block:
            connection.close()
