"""Errors of the integration API, with the stable codes clients see."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError


class ApiKeyInvalid(ApplicationError):
    """No key matches, or it was revoked or has expired (the code says which)."""

    code = "api_key_invalid"
    status = 401


class ScopeMissing(ApplicationError):
    code = "scope_missing"
    status = 403


class IdempotencyKeyInvalid(ApplicationError):
    code = "idempotency_key_invalid"
    status = 400


class IdempotencyKeyReused(ApplicationError):
    """The key was first sent with another body or to another endpoint."""

    code = "idempotency_key_reused"
    status = 422


class IdempotencyInProgress(ApplicationError):
    """The first request with this key is still running: retry shortly."""

    code = "idempotency_in_progress"
    status = 409


class RequestTooLarge(ApplicationError):
    code = "request_too_large"
    status = 413
