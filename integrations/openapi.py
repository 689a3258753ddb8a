"""Schema pieces every API view shares: the Idempotency-Key header and the error responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter

from chatsite.api import ErrorSerializer

IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[!-~]{1,255}$", "maxLength": 255},
    OpenApiParameter.HEADER,
    required=False,
    # As integrations.idempotency checks it: printable ASCII without spaces, 1 to 255 long.
    pattern=r"^[!-~]{1,255}$",
    description=(
        "Any unique string (a UUID, say), up to 255 printable ASCII characters. A retry with "
        "the same key and body gets the first response back and does nothing twice; the same "
        "key with another body gets 422 idempotency_key_reused. Kept 24 hours."
    ),
)

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 413, 422, 429)}
