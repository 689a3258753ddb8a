"""Intent reads."""

from __future__ import annotations

from django.db.models import QuerySet

from nlu.models import Intent


def intent_list_active() -> QuerySet[Intent]:
    """Active intents with their slots (in asking order) and examples prefetched (three queries)."""
    return Intent.objects.filter(active=True).prefetch_related("slots", "examples")


def intent_get_active(name: str) -> Intent | None:
    """One active intent by name, with its slots prefetched; None when there is none."""
    return intent_list_active().filter(name=name).first()
