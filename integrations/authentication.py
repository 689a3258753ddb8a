"""DRF authentication and permissions for the integration API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from integrations.exceptions import ApiKeyInvalid
from integrations.keys import api_key_authenticate
from integrations.models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>` (or `X-Api-Key: <key>`): the key's owner is the user."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        raw = _raw_key(request)
        if raw is None:
            return None  # other schemes (staff session) may still authenticate
        try:
            api_key = api_key_authenticate(raw)
        except ApiKeyInvalid as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc
        return (api_key.owner, api_key)

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def _raw_key(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        keyword, _, value = header.partition(" ")
        if keyword.lower() != "bearer":
            return None
        value = value.strip()
        if not value:
            raise exceptions.AuthenticationFailed(
                "The Authorization header has no key", code="api_key_invalid"
            )
        return value
    value = request.headers.get("X-Api-Key", "").strip()
    return value or None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ApiKeyAuthentication."""

    target_class = "integrations.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made by staff in the admin (Integrations → API keys).",
        }


class HasScope(permissions.BasePermission):
    """The view's `required_scope` must be one of the key's scopes; staff sessions pass.

    Staff signed in to the admin may use the browsable API with their session; an API key
    acts only within its scopes.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        scope = getattr(view, "required_scope", None)
        if scope is None:
            raise RuntimeError(f"{type(view).__name__} has no required_scope")
        if isinstance(request.auth, ApiKey):
            if scope not in request.auth.scopes:
                raise exceptions.PermissionDenied(
                    f"This API key lacks the {scope!r} scope", code="scope_missing"
                )
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Send an API key: Authorization: Bearer <key>", code="not_authenticated"
            )
        if not user.is_staff:
            raise exceptions.PermissionDenied(
                "Only an API key or a staff session may use this endpoint", code="staff_only"
            )
        return True


def key_name(request: Request) -> str:
    """Who acted, for audit records: the key's name and prefix, or the staff username."""
    if isinstance(request.auth, ApiKey):
        return f"api key {request.auth.name} ({request.auth.prefix}…)"
    return str(getattr(request.user, "username", "") or "")
