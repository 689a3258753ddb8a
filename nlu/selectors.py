"""Intent and classifier reads."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from nlu.models import Intent, IntentExample, NluModel


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


def intent_list() -> QuerySet[Intent]:
    """Every intent, active or not, with its slots prefetched and its examples counted."""
    return Intent.objects.annotate(example_count=Count("examples")).prefetch_related("slots")


def intent_get(name: str) -> Intent | None:
    """One intent by name (active or not), or None; its slots are read when used."""
    return Intent.objects.filter(name=name).first()


def intent_example_list(intent: Intent) -> QuerySet[IntentExample]:
    """The intent's examples."""
    return IntentExample.objects.filter(intent=intent)


def intent_example_get(intent: Intent, pk: int) -> IntentExample | None:
    """One example of the intent, or None (also for another intent's example)."""
    return IntentExample.objects.filter(intent=intent, pk=pk).first()


def nlu_model_list() -> QuerySet[NluModel]:
    """Every trained (or training) classifier, without its artifact and image blobs."""
    return NluModel.objects.defer("artifact", "confusion_png")


def nlu_model_get(pk: int) -> NluModel | None:
    """One classifier by id (blobs deferred), or None."""
    return nlu_model_list().filter(pk=pk).first()
