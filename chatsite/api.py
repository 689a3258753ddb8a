"""REST API plumbing shared by every app: authentication, the error shape, query parsing.

Every API error, ours or DRF's or Django's, leaves as
``{"code": "<stable snake_case>", "message": "<for people>", "detail": {...}}``
with the matching HTTP status; never a stack trace. The codes are those of the WebSocket's
error frames, whose shape is the same (plus ``"type": "error"``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions, pagination, serializers
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


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (for the OpenAPI schema)."""

    code = serializers.CharField(help_text="Stable snake_case code, the same as the WebSocket's")
    message = serializers.CharField(help_text="For people; may change")
    detail = serializers.DictField(help_text="Machine-readable specifics, e.g. fields or limit")


class CursorPage(pagination.CursorPagination):
    """Every list: an opaque cursor (stable under inserts), `limit` from 1 to 200.

    DRF quietly falls back to the default page size for a malformed `limit`, and puts a decoded
    cursor's position straight into a filter: a forged cursor whose position is not a number (for
    an integer ordering) or holds a NUL (PostgreSQL refuses it in text) would end as a 500. Here
    the first is a 400 and the second a 404 "Invalid cursor", like any other bad cursor.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-created_at"

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.getlist(self.page_size_query_param)
        if not raw:
            return self.page_size
        value = int(raw[0]) if len(raw) == 1 and _LIMIT.fullmatch(raw[0]) else 0
        if not 1 <= value <= self.max_page_size:
            raise InvalidParameter(
                "A query parameter is not valid",
                extra={"fields": {"limit": [f"A number from 1 to {self.max_page_size}."]}},
            )
        return value

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            if not self._position_valid(cursor.position):
                raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor

    def _position_valid(self, position: str) -> bool:
        if "\x00" in position:
            return False
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        field = self._model._meta.get_field(ordering.lstrip("-"))
        try:
            value = field.to_python(position)
        except DjangoValidationError:
            return False
        if isinstance(field, models.IntegerField):
            return _INT_RANGE[0] <= value <= _INT_RANGE[1]
        return True

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 200}
                parameter["description"] = (
                    f"Rows per page, 1 to {self.max_page_size} (default {self.page_size})"
                )
        return parameters


_LIMIT = re.compile(r"[0-9]{1,4}")
# The range of the 64-bit integer columns of both databases (SQLite's INTEGER, bigint).
_INT_RANGE = (-(2**63), 2**63 - 1)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error envelope."""
    return {"code": code, "message": message, "detail": details or {}}


def query_params(serializer_class: type[serializers.Serializer], request: Request) -> Any:
    """Validate the query string with a serializer.

    Raises:
        InvalidParameter: with the field errors in ``detail.fields``.
    """
    # A parameter given twice (?q=a&q=b) is refused, not read as its last value: the schema
    # says each is one value, and a client sending two has a bug it should hear about.
    repeated = {
        name: ["Give this parameter once."]
        for name in serializer_class().fields
        if len(request.query_params.getlist(name)) > 1
    }
    if repeated:
        raise InvalidParameter("A query parameter is not valid", extra={"fields": repeated})
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
        details["retry_after"] = max(1, math.ceil(exc.wait))
    if isinstance(exc, exceptions.ParseError):
        code = "invalid_json"  # the WebSocket's code for the same mistake
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
    from rest_framework.renderers import JSONRenderer
    from rest_framework.views import set_rollback

    set_rollback()
    request = context.get("request")
    if request is not None:
        # Errors are JSON whatever was asked for (an event stream, a ?format=): one shape.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return Response(error_body(code, message, details), status=status, headers=headers)


class ApiBodyLimitMiddleware:
    """Refuse an API request whose body is over API_MAX_BODY_BYTES before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            limit = settings.API_MAX_BODY_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                body = error_body(
                    "request_too_large",
                    f"Request bodies are limited to {limit} bytes",
                    {"limit": limit},
                )
                return JsonResponse(body, status=413)
        return self.get_response(request)


@csrf_exempt  # nothing to protect, and a CSRF failure here would be an HTML page
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any /api/ URL no endpoint matched (also with DEBUG on, where handler404 is not used)."""
    return JsonResponse(error_body("not_found", "Not found"), status=404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the JSON error under /api/, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        body = error_body("csrf_failed", "CSRF check failed: send the csrftoken cookie's value")
        return JsonResponse(body, status=403)
    return csrf.csrf_failure(request, reason)


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
