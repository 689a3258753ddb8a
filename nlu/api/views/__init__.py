"""NLU API: parse text (scope nlu); intents, examples, sensitive words and classifier models
(scope admin-data). Thin views: parse the input, call one service or selector, serialize.

Every write goes through the services the admin uses, with the same validation; every POST that
creates something runs once per Idempotency-Key.
"""

from __future__ import annotations

from nlu.api.views.intents import (
    IntentDetailApi,
    IntentExampleDetailApi,
    IntentExampleListCreateApi,
    IntentListCreateApi,
)
from nlu.api.views.models import (
    NluModelDetailApi,
    NluModelListCreateApi,
    NluModelPromoteApi,
    NluModelRollbackApi,
)
from nlu.api.views.parse import NluParseApi
from nlu.api.views.words import SensitiveWordDetailApi, SensitiveWordListCreateApi

__all__ = [
    "IntentDetailApi",
    "IntentExampleDetailApi",
    "IntentExampleListCreateApi",
    "IntentListCreateApi",
    "NluModelDetailApi",
    "NluModelListCreateApi",
    "NluModelPromoteApi",
    "NluModelRollbackApi",
    "NluParseApi",
    "SensitiveWordDetailApi",
    "SensitiveWordListCreateApi",
]
