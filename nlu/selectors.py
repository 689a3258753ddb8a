"""Intent reads."""

from __future__ import annotations

from django.db.models import QuerySet

from nlu.models import Intent


def intent_list_active() -> QuerySet[Intent]:
    """Active intents with their slots prefetched in asking order (two queries in all).

    Every turn reads these; the examples (thousands in a large domain) are left out: only the
    LLM labeller needs them (intent_list_for_labelling).
    """
    return Intent.objects.filter(active=True).prefetch_related("slots")


def intent_list_for_labelling() -> list[Intent]:
    """Active intents with their examples prefetched, for the few-shot prompt (two queries)."""
    return list(Intent.objects.filter(active=True).prefetch_related("examples"))


def intent_get_active(name: str) -> Intent | None:
    """One active intent by name, with its slots prefetched; None when there is none."""
    return intent_list_active().filter(name=name).first()
