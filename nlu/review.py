"""The review queue: low-confidence utterances that staff accept, correct or dismiss."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from chatsite.exceptions import ApplicationError
from nlu.classifier.normalize import normalize
from nlu.exceptions import ReviewIntentMissing, ReviewItemResolved, ReviewNoSuggestion
from nlu.models import Intent, IntentExample, NluModel, ReviewItem, ReviewStatus

MAX_TEXT = 500
MAX_TOP = 5


@dataclass
class BulkResult:
    """How many items a bulk action resolved, and why the others were not."""

    done: int = 0
    errors: list[str] = field(default_factory=list)


def review_record(
    *,
    text: str,
    top: Sequence[Sequence[Any]],
    model_version_id: int | None,
    suggested_intent: str,
) -> ReviewItem | None:
    """Queue an utterance the classifier was unsure about, or count it again if already open.

    `top` is the model's [(intent, confidence), ...], best first. The latest sighting's scores
    and suggestion replace older ones (a newer model may have seen it). None for a text that
    normalises to nothing.
    """
    normalized = normalize(text)
    if not normalized:
        return None
    scores = [[str(name), round(float(conf), 4)] for name, conf, *_ in list(top)[:MAX_TOP]]
    if model_version_id is not None and not NluModel.objects.filter(pk=model_version_id).exists():
        model_version_id = None  # deleted meanwhile: keep the utterance, drop the link
    fields: dict[str, Any] = {
        "top": scores,
        "model_intent": scores[0][0][:100] if scores else "",
        "model_confidence": scores[0][1] if scores else None,
        "nlu_model_id": model_version_id,
    }
    if suggested_intent:
        fields["suggested_intent"] = suggested_intent[:100]
    for _attempt in range(2):
        with transaction.atomic():
            item = (
                ReviewItem.objects.select_for_update()
                .filter(normalized=normalized, status=ReviewStatus.OPEN)
                .first()
            )
            if item is not None:
                ReviewItem.objects.filter(pk=item.pk).update(
                    seen_count=F("seen_count") + 1, **fields
                )
                item.refresh_from_db()
                return item
            try:
                # A savepoint: a concurrent first sighting wins the unique constraint, we count.
                with transaction.atomic():
                    return ReviewItem.objects.create(
                        text=text.strip()[:MAX_TEXT], normalized=normalized, **fields
                    )
            except IntegrityError:
                continue
    raise ApplicationError("The review item could not be recorded.", code="review_record_failed")


def review_accept(item: ReviewItem, *, user: Any) -> ReviewItem:
    """Add the utterance to the LLM's suggested intent and close the item.

    Raises:
        ReviewItemResolved: the item is no longer open.
        ReviewNoSuggestion: there is no suggestion to accept.
        ReviewIntentMissing: the suggested intent no longer exists.
    """
    with transaction.atomic():
        item = _lock_open(item)
        if not item.suggested_intent:
            raise ReviewNoSuggestion(
                "This item has no suggested intent: choose one with Correct.",
                extra={"item": item.pk},
            )
        intent = Intent.objects.filter(name=item.suggested_intent).first()
        if intent is None:
            raise ReviewIntentMissing(
                f"The suggested intent {item.suggested_intent!r} no longer exists: choose one "
                "with Correct.",
                extra={"item": item.pk, "intent": item.suggested_intent},
            )
        return _resolve(item, ReviewStatus.ACCEPTED, intent=intent, user=user)


def review_correct(item: ReviewItem, *, intent: Intent, user: Any) -> ReviewItem:
    """Add the utterance to the intent staff chose and close the item.

    Raises:
        ReviewItemResolved: the item is no longer open.
    """
    with transaction.atomic():
        item = _lock_open(item)
        status = (
            ReviewStatus.ACCEPTED
            if intent.name == item.suggested_intent
            else ReviewStatus.CORRECTED
        )
        return _resolve(item, status, intent=intent, user=user)


def review_dismiss(item: ReviewItem, *, user: Any) -> ReviewItem:
    """Close the item without adding anything to the training data.

    Raises:
        ReviewItemResolved: the item is no longer open.
    """
    with transaction.atomic():
        return _resolve(_lock_open(item), ReviewStatus.DISMISSED, intent=None, user=user)


def review_accept_all(*, items: Iterable[ReviewItem], user: Any) -> BulkResult:
    """Accept each item's suggestion; items that cannot be accepted are left as they are."""
    return _each(items, lambda item: review_accept(item, user=user))


def review_dismiss_all(*, items: Iterable[ReviewItem], user: Any) -> BulkResult:
    """Dismiss every open item among these."""
    return _each(items, lambda item: review_dismiss(item, user=user))


def _each(items: Iterable[ReviewItem], resolve: Callable[[ReviewItem], object]) -> BulkResult:
    """Resolve items one by one; one that cannot be resolved is reported, the rest go on."""
    result = BulkResult()
    for item in items:
        try:
            resolve(item)
        except ApplicationError as exc:
            result.errors.append(f"{item.text[:40]!r}: {exc.message}")
        else:
            result.done += 1
    return result


def _lock_open(item: ReviewItem) -> ReviewItem:
    """The item's current row, locked; it must still be open (two staff may click at once)."""
    current = ReviewItem.objects.select_for_update().get(pk=item.pk)
    if current.status != ReviewStatus.OPEN:
        raise ReviewItemResolved(
            f"This item was already {current.get_status_display().lower()}.",
            extra={"item": item.pk, "status": current.status},
        )
    return current


def _resolve(
    item: ReviewItem, status: ReviewStatus, *, intent: Intent | None, user: Any
) -> ReviewItem:
    if intent is not None:
        # Already an example of that intent: the item is resolved all the same, no second row.
        IntentExample.objects.get_or_create(intent=intent, text=item.text.strip()[:MAX_TEXT])
    item.status = status
    item.resolved_intent = intent
    item.resolved_by = user if getattr(user, "pk", None) else None
    item.resolved_at = timezone.now()
    item.save(update_fields=["status", "resolved_intent", "resolved_by", "resolved_at"])
    return item
