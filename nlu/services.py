"""Intent writes (loading a domain) and the template reply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction

from nlu.exceptions import TemplateMissing, TemplateSlotMissing
from nlu.models import LANGUAGES, Intent, IntentExample, SlotDefinition
from nlu.templates import template_fill, template_placeholders, template_unknown_placeholders

Outcome = Literal["created", "updated", "unchanged", "kept"]

_INTENT_FIELDS = (
    "display_name",
    "description",
    "reply_mode",
    "response_template_en",
    "response_template_zh",
    "confirm_template_en",
    "confirm_template_zh",
    "active",
)
_SLOT_FIELDS = (
    "label_en",
    "label_zh",
    "slot_type",
    "choices",
    "required",
    "is_personal_data",
    "prompt_en",
    "prompt_zh",
    "order",
)


def reply_language(language_code: str) -> str:
    """Map a language code (en, en-gb, zh, zh-hans, ...) to a template language: en or zh."""
    return "zh" if language_code.lower().startswith("zh") else "en"


def intent_template_errors(
    *, templates: Mapping[str, str], slot_names: Iterable[str]
) -> dict[str, str]:
    """Per template field ("response_template_en", ...), why it does not fit the slots."""
    names = frozenset(slot_names)
    errors: dict[str, str] = {}
    for field, text in templates.items():
        try:
            unknown = template_unknown_placeholders(text, names)
        except ValueError as exc:
            errors[field] = str(exc)
            continue
        if unknown:
            listed = ", ".join(f"{{{n}}}" for n in unknown)
            known = ", ".join(sorted(names)) or "none yet"
            errors[field] = f"{listed}: no slot of this intent has that name (slots: {known})."
    return errors


def intent_templates(intent: Intent) -> dict[str, str]:
    """Every template field of an intent ("response_template_en", ...) with its text."""
    return {
        f"{kind}_template_{lang}": getattr(intent, f"{kind}_template_{lang}")
        for kind in ("response", "confirm")
        for lang in LANGUAGES
    }


def missing_slots(intent: Intent, filled: set[str]) -> list[SlotDefinition]:
    """The required slots not yet filled, in the order they should be asked."""
    # .all() keeps the prefetched, ordered slots of intent_list_active(): no query per turn.
    return [slot for slot in intent.slots.all() if slot.required and slot.name not in filled]


def render_template(intent: Intent, values: Mapping[str, str], *, language: str = "en") -> str:
    """Fill the intent's template for a language with slot values (choice values get labels).

    A placeholder of an optional slot without a value becomes empty text.

    Raises:
        TemplateSlotMissing: a required slot used by the template has no value.
        TemplateMissing: the intent has no template in that language.
    """
    language = reply_language(language)
    text = intent.response_template(language)
    if not text.strip():
        raise TemplateMissing(
            f"Intent {intent.name!r} has no {language} response template",
            extra={"intent": intent.name, "language": language},
        )
    slots = {slot.name: slot for slot in intent.slots.all()}
    absent = [
        name
        for name in template_placeholders(text)
        if not values.get(name) and (name not in slots or slots[name].required)
    ]
    if absent:
        raise TemplateSlotMissing(
            f"Intent {intent.name!r} cannot reply without: {', '.join(absent)}",
            extra={"intent": intent.name, "slots": absent},
        )

    def value_for(name: str) -> str:
        value = values.get(name) or ""
        slot = slots.get(name)
        return slot.choice_label(value, language) if slot and value else value

    return template_fill(text, value_for)


@transaction.atomic
def domain_load(
    *, intents: list[dict[str, Any]], update_existing: bool = True
) -> list[tuple[str, Outcome]]:
    """Create or update intents and their slots by name; slots not listed are left alone.

    Each intent is a dict of Intent fields plus "slots": a list of dicts of SlotDefinition
    fields, and "examples": sentences users say for it (added if new; none is removed). With
    update_existing=False an intent that already exists is "kept" as staff left it, slots and
    examples included. Returns ("intent", "intent.slot" or "intent.examples", outcome) for every
    row.

    Raises:
        ValidationError: a row or a template is invalid; nothing is written.
    """
    report: list[tuple[str, Outcome]] = []
    for data in intents:
        name = data["name"]
        existing = Intent.objects.filter(name=name).first()
        if existing is not None and not update_existing:
            report.append((name, "kept"))
            continue
        intent = existing or Intent(name=name)
        report.append((name, _upsert(intent, data, _INTENT_FIELDS)))
        for order, slot_data in enumerate(data.get("slots", []), start=1):
            slot = intent.slots.filter(name=slot_data["name"]).first() or SlotDefinition(
                intent=intent, name=slot_data["name"]
            )
            slot_data = {"order": order * 10, **slot_data}
            report.append((f"{name}.{slot.name}", _upsert(slot, slot_data, _SLOT_FIELDS)))
        if "examples" in data:
            added = [
                IntentExample.objects.get_or_create(intent=intent, text=text.strip())[1]
                for text in data["examples"]
            ]
            report.append((f"{name}.examples", "created" if any(added) else "unchanged"))
        errors = intent_template_errors(
            templates=intent_templates(intent),
            slot_names=intent.slots.values_list("name", flat=True),
        )
        if errors:
            raise ValidationError({f"{name}.{field}": msg for field, msg in errors.items()})
    return report


def _upsert(
    obj: Intent | SlotDefinition, data: Mapping[str, Any], fields: tuple[str, ...]
) -> Outcome:
    """Set the given fields, validate and save when something changed."""
    unknown = set(data) - set(fields) - {"name", "slots", "examples"}
    if unknown:
        raise ValidationError(f"{obj}: unknown fields {sorted(unknown)}")
    changed = [f for f in fields if f in data and getattr(obj, f) != data[f]]
    for field in changed:
        setattr(obj, field, data[field])
    if obj.pk is not None and not changed:
        return "unchanged"
    created = obj.pk is None
    obj.full_clean()
    obj.save()
    return "created" if created else "updated"
