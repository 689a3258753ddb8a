"""Slot values found in a user's message, in Chinese and English: rules, not a model.

The dialogue engine asks for one slot at a time but users answer several at once ("两份经典套餐，
送到世纪大道100号"), correct earlier answers ("不对，手机号是139…", "actually make it two") or
answer something else entirely. Everything here is a pure function of the text, the slot specs,
the slot being asked for and today's date, so it is cheap to test and safe to run anywhere.

Order matters: e-mails, phones, dates and times are found first, anywhere in the text, and their
spans are "consumed" so that digits inside them are never read as a quantity. Addresses come next
(their digits are consumed too), then choices outside the address, then numbers. When in doubt a
slot is left empty: asking again costs one turn, a wrong quantity costs a wrong order.

Offsets: the text is NFKC-normalised (full-width digits and letters from Chinese IMEs become
ASCII) for matching, and every span is mapped back to the original text, so `Entity.raw` is always
an exact substring of what the caller passed in and can be masked there.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .addresses import find_address
from .answers import is_cancel, yes_no
from .choices import find_choice, resolve_choice
from .contacts import find_emails, find_phones
from .dates import TIME, find_dates
from .freetext import find_text
from .numbers import find_quantity, parse_chinese_number, parse_number
from .text import Found, Text, overlaps, pick_last

if TYPE_CHECKING:
    from nlu.models import SlotDefinition

__all__ = [
    "Entity",
    "SlotSpec",
    "extract",
    "is_cancel",
    "parse_chinese_number",
    "parse_number",
    "yes_no",
]


@dataclass(frozen=True)
class SlotSpec:
    """What extract() needs to know about a slot: a plain value, so no database is involved."""

    name: str
    slot_type: str  # phone / email / address / number / date / text / choice
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, en label, zh label)

    @classmethod
    def from_definition(cls, slot: SlotDefinition | Any) -> SlotSpec:
        """The spec of a SlotDefinition (or anything with name, slot_type and choices)."""
        choices = tuple(
            (str(c.get("value", "")), str(c.get("en", "")), str(c.get("zh", "")))
            for c in (getattr(slot, "choices", None) or [])
            if isinstance(c, dict) and c.get("value")
        )
        return cls(name=str(slot.name), slot_type=str(slot.slot_type), choices=choices)


@dataclass(frozen=True)
class Entity:
    """A slot value and the exact substring of the caller's text it was read from."""

    slot: str
    value: str
    raw: str
    # Where `raw` is in the caller's text (end exclusive): what the parse API reports.
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


def _only(slots: Sequence[SlotSpec], slot_type: str, awaiting: str | None) -> SlotSpec | None:
    """The slot a value of this type goes to: the awaited one, else the only one of the type."""
    of_type = [s for s in slots if s.slot_type == slot_type]
    for s in of_type:
        if s.name == awaiting:
            return s
    return of_type[0] if len(of_type) == 1 else None


def extract(
    text: str,
    slots: Sequence[SlotSpec],
    *,
    awaiting: str | None = None,
    today: datetime.date | None = None,
) -> dict[str, Entity]:
    """Values for the given slots found in text. `awaiting` is the slot the bot just asked for.

    `today` anchors relative dates; pass the user's local date (the default is the current
    date in Django's active time zone).
    """
    t = Text(text)
    norm = t.norm
    awaited = next((s for s in slots if s.name == awaiting), None)
    awaited_type = awaited.slot_type if awaited else None
    result: dict[str, Entity] = {}

    def put(slot: SlotSpec | None, found: Found | None) -> None:
        if slot is not None and found is not None and slot.name not in result:
            start, end = t.span(found.start, found.end)
            result[slot.name] = Entity(slot.name, found.value, t.original[start:end], start, end)

    taken: list[tuple[int, int]] = []

    emails = find_emails(t)
    taken += [(f.start, f.end) for f in emails]
    put(_only(slots, "email", awaiting), pick_last(emails, norm))

    phones = find_phones(t, taken, expected=awaited_type == "phone")
    taken += [(f.start, f.end) for f in phones]
    put(_only(slots, "phone", awaiting), pick_last(phones, norm))

    dates = find_dates(t, taken, today or timezone.localdate())
    taken += [(f.start, f.end) for f in dates]
    taken += [(m.start(), m.end()) for m in TIME.finditer(norm)]
    put(_only(slots, "date", awaiting), pick_last(dates, norm))

    choice_slots = [s for s in slots if s.slot_type == "choice"]
    choice_mentions = {s.name: find_choice(t, s, taken) for s in choice_slots}

    address_slot = _only(slots, "address", awaiting)
    if address_slot is not None:
        mentions = [(f.start, f.end) for found in choice_mentions.values() for f in found]
        address = find_address(t, taken, awaiting=awaited_type == "address", not_address=mentions)
        if address is not None:
            taken.append((address.start, address.end))
            put(address_slot, address)

    for slot in choice_slots:
        mentions = [f for f in choice_mentions[slot.name] if not overlaps(f.start, f.end, taken)]
        chosen = resolve_choice(mentions, norm)
        put(slot, chosen)
        taken += [(f.start, f.end) for f in mentions]

    number_slot = _only(slots, "number", awaiting)
    if number_slot is not None:
        is_awaited = number_slot.name == awaiting
        number_slots = sum(1 for s in slots if s.slot_type == "number")
        # Bare "three" when nothing else was asked: the confirmation step, or a correction.
        bare_ok = number_slots == 1 and awaiting is None
        put(number_slot, find_quantity(t, taken, awaited=is_awaited, bare_ok=bare_ok))

    if awaited is not None and awaited.slot_type == "text":
        put(awaited, find_text(t))
    return result
