"""What every NLU API view shares: the scope each needs, the intent in the path."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework.views import APIView

from integrations.authentication import HasScope
from integrations.models import Scope
from nlu import selectors
from nlu.api import serializers as s
from nlu.exceptions import IntentNotFound
from nlu.models import Intent

INTENT_NAME = OpenApiParameter(
    "name",
    str,
    OpenApiParameter.PATH,
    description="The intent's name (lowercase snake_case)",
    pattern=s.NAME_PATTERN,
)


class NluScoped(APIView):
    """Needs an API key with the nlu scope (or a staff session)."""

    permission_classes = [HasScope]
    required_scope = Scope.NLU


class AdminDataScoped(APIView):
    """Needs an API key with the admin-data scope (or a staff session)."""

    permission_classes = [HasScope]
    required_scope = Scope.ADMIN_DATA


def intent_or_404(name: str) -> Intent:
    """The intent named in the path.

    Raises:
        IntentNotFound: none has that name.
    """
    intent = selectors.intent_get(name)
    if intent is None:
        raise IntentNotFound(f"No intent is named {name!r}")
    return intent
