"""REST API plumbing shared by every app: authentication, the error shape, query parsing.

Every API error, ours or DRF's or Django's, leaves as
``{"error": {"code": "<stable snake_case>", "message": "<for people>", "details": {...}}}``
with the matching HTTP status; never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.exceptions import ApplicationError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class InvalidParameter(ApplicationError):
    """A query-string parameter is missing, malformed or out of range."""

    code = "invalid_parameter"
    status = 400


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session cookie, with CSRF checked for anonymous sessions too.

    DRF skips the CSRF check when nobody is signed in, but here anonymous sessions own
    conversations (and redeem pickup codes), so a cross-site form must not act for them.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        user = getattr(request._request, "user", None)
        self.enforce_csrf(request)  # a no-op for GET, HEAD, OPTIONS and TRACE
        if user is None or not user.is_active:
            return None
        return (user, None)

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc.detail), code="csrf_failed") from exc


class SessionAuthenticationScheme(SessionScheme):
    """The OpenAPI security scheme of our SessionAuthentication (the session cookie)."""

    target_class = "chatsite.api.SessionAuthentication"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (for the OpenAPI schema)."""

    error = ErrorDetailSerializer()


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def query_params(serializer_class: type[serializers.Serializer], request: Request) -> Any:
    """Validate the query string with a serializer.

    Raises:
        InvalidParameter: with the field errors in ``details.fields``.
    """
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        raise InvalidParameter(
            "A query parameter is not valid", extra={"fields": serializer.errors}
        )
    return serializer.validated_data


def _api_exception(exc: exceptions.APIException) -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) of one of DRF's own exceptions."""
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        details = {"fields": detail} if isinstance(detail, dict) else {"errors": detail}
        return "validation_error", "Some fields are not valid", details
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else str(exc.default_code)
    details: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details["retry_after"] = int(exc.wait)
    return code, str(exc.detail), details


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: one JSON shape for every error."""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        status, code, message, details = exc.status, exc.code, exc.message, dict(exc.extra)
        if "retry_after" in details:
            headers["Retry-After"] = str(details["retry_after"])
    elif isinstance(exc, DjangoValidationError):
        status, code, message = 400, "validation_error", "Some fields are not valid"
        details = (
            {"fields": exc.message_dict} if hasattr(exc, "error_dict") else {"errors": exc.messages}
        )
    elif isinstance(exc, exceptions.APIException):
        status = exc.status_code
        code, message, details = _api_exception(exc)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
        if "retry_after" in details:
            headers["Retry-After"] = str(details["retry_after"])
    else:
        view = context.get("view")
        logger.exception("unhandled API error", extra={"view": type(view).__name__})
        status, code, message, details = 500, "internal_error", "Something went wrong", {}

    # Imported here: rest_framework.views loads the settings, which load this module.
    from rest_framework.views import set_rollback

    set_rollback()
    return Response(error_body(code, message, details), status=status, headers=headers)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under /api/ (no DRF view matched), the HTML page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("not_found", "Not found"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/, the HTML page elsewhere (the error is logged by Django)."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse(error_body("internal_error", "Something went wrong"), status=500)
    return defaults.server_error(request)
