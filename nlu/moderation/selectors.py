"""Reads of the sensitive-word list (the API's; the admin has its own changelist)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from nlu.models import SensitiveWord
from nlu.moderation.normalize import normalize_word


def sensitive_word_list(
    *,
    category: str | None = None,
    action: str | None = None,
    is_active: bool | None = None,
    q: str = "",
) -> QuerySet[SensitiveWord]:
    """The words, filtered; `q` finds a word as typed, in its normalised form, or in its note."""
    words = SensitiveWord.objects.all()
    if category is not None:
        words = words.filter(category=category)
    if action is not None:
        words = words.filter(action=action)
    if is_active is not None:
        words = words.filter(is_active=is_active)
    q = q.strip()
    if q:
        found = Q(word__icontains=q) | Q(note__icontains=q)
        # "ＢＡＤ" or "b.a.d" finds "bad": the matcher's own normalisation.
        normalised = normalize_word(q)
        if normalised:
            found |= Q(normalised__contains=normalised)
        words = words.filter(found)
    return words


def sensitive_word_get(pk: int) -> SensitiveWord | None:
    """One word by id, or None."""
    return SensitiveWord.objects.filter(pk=pk).first()
