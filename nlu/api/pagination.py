"""The lists of the NLU API: chatsite's CursorPage (cursor and `limit` checked), by id."""

from __future__ import annotations

from chatsite.api import CursorPage


class CheckedCursorPage(CursorPage):
    """A page of at most `limit` (default 50, at most 200) rows; `ordering` is set per list."""

    ordering = "id"
