"""Base errors. Every domain error has a stable snake_case code shared by WebSocket and API."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An error the user may see: a stable code, a human message, an HTTP-ish status."""

    code = "application_error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}


class TransientError(ApplicationError):
    """A failure worth retrying (a dependency hiccup)."""

    code = "temporarily_unavailable"
    status = 503
