"""Intent writes (one intent, or loading a domain) and the template reply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from nlu.exceptions import IntentExists, TemplateMissing, TemplateSlotMissing
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


# --- one intent (the integration API; the admin validates the same way through its forms) ------


def intent_create(*, name: str, slots: Sequence[Mapping[str, Any]] = (), **fields: Any) -> Intent:
    """Add an intent with its slots (dicts of SlotDefinition fields, asked in list order).

    Raises:
        IntentExists: the name is taken.
        ValidationError: by field ("slots[1].prompt_en" for a slot's); nothing is written.
    """
    return _intent_write(Intent(name=name), fields, slots)


def intent_update(
    *, intent: Intent, slots: Sequence[Mapping[str, Any]] | None = None, **fields: Any
) -> Intent:
    """Change the given fields of an intent (`name` renames it).

    `slots`, when given, is the whole new list: slots are matched by name (updated), new names
    are added and the slots not listed are deleted, all in one transaction.

    Raises:
        IntentExists, ValidationError: as intent_create; nothing is written.
    """
    return _intent_write(intent, fields, slots)


@transaction.atomic
def intent_delete(*, intent: Intent) -> None:
    """Delete an intent with its slots and examples (stored conversations keep its name)."""
    intent.delete()


def intent_example_delete(*, example: IntentExample) -> None:
    """Remove one example (the next trained classifier no longer learns it)."""
    example.delete()


@transaction.atomic
def _intent_write(
    intent: Intent, fields: Mapping[str, Any], slots: Sequence[Mapping[str, Any]] | None
) -> Intent:
    """Validate an intent and its slots together, as the admin's form and slot inline do."""
    unknown = set(fields) - {"name", *_INTENT_FIELDS}
    if unknown:
        raise ValidationError(f"Unknown intent fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(intent, name, value)
    if Intent.objects.filter(name=intent.name).exclude(pk=intent.pk).exists():
        raise _exists(intent.name)
    errors: dict[str, list[str]] = {}
    try:
        intent.full_clean(validate_unique=False)  # field rules, Intent.clean (template syntax)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    current = {slot.name: slot for slot in intent.slots.all()} if intent.pk else {}
    new_slots = None if slots is None else _slots_clean(slots, current, errors)
    names = [s.name for s in new_slots] if new_slots is not None else list(current)
    # A template that does not parse is already reported on its field by Intent.clean.
    template_errors = intent_template_errors(templates=intent_templates(intent), slot_names=names)
    for field_name, message in template_errors.items():
        errors.setdefault(field_name, [message])
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():  # a savepoint: a concurrent create of the same name wins
            intent.save()
    except IntegrityError:
        raise _exists(intent.name) from None
    if new_slots is not None:
        intent.slots.exclude(name__in=names).delete()
        for slot in new_slots:
            slot.intent = intent
            slot.save()
    return intent


def _exists(name: str) -> IntentExists:
    return IntentExists(f"An intent named {name!r} exists already", extra={"name": name})


def _slots_clean(
    slots: Sequence[Mapping[str, Any]],
    current: Mapping[str, SlotDefinition],
    errors: dict[str, list[str]],
) -> list[SlotDefinition]:
    """The slots as they will be saved; their problems are added to `errors`."""
    cleaned: list[SlotDefinition] = []
    seen: set[str] = set()
    for position, data in enumerate(slots):
        where = f"slots[{position}]"
        unknown = set(data) - {"name", *_SLOT_FIELDS}
        if unknown:
            errors[where] = [f"Unknown slot fields: {', '.join(sorted(unknown))}"]
            continue
        name = str(data.get("name", ""))
        slot = current.get(name) or SlotDefinition(name=name)
        # Asked in list order unless an order is given (as domain_load does).
        values = {"order": (position + 1) * 10, **data}
        for field_name in _SLOT_FIELDS:
            if field_name in values:
                setattr(slot, field_name, values[field_name])
        try:
            slot.full_clean(exclude=["intent"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            errors.update({f"{where}.{k}": v for k, v in exc.message_dict.items()})
        if name in seen:
            errors.setdefault(f"{where}.name", []).append(f"Two slots are named {name!r}.")
        seen.add(name)
        cleaned.append(slot)
    return cleaned
