"""Import examples into intents (all or nothing, with a report) and export them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import transaction

from nlu.exchange.formats import WRITERS, Format, file_parse
from nlu.exchange.rows import (
    Entity,
    ExampleRow,
    InvalidRow,
    identifier_from,
    is_identifier,
)
from nlu.models import Intent, IntentExample, ReplyMode

# PostgreSQL refuses NUL in text; the others are invisible and never typed on purpose.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TEXT = IntentExample._meta.get_field("text").max_length or 500


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    dry_run: bool
    added: int = 0
    duplicates: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)
    intents_created: list[str] = field(default_factory=list)
    unknown_intents: dict[str, int] = field(default_factory=dict)  # name → rows skipped
    renamed: dict[str, str] = field(default_factory=dict)  # name in the file → our name
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    filename: str
    content_type: str


_EXPORT_TYPES = {
    Format.CSV: ("csv", "text/csv; charset=utf-8"),
    Format.JSONL: ("jsonl", "application/jsonl; charset=utf-8"),
    Format.RASA: ("yml", "application/yaml; charset=utf-8"),
}


def examples_import_file(
    *,
    data: bytes,
    filename: str,
    fmt: Format | None = None,
    languages: Collection[str] | None = None,
    create_intents: bool,
    dry_run: bool,
) -> ImportReport:
    """Parse an uploaded file (format from its name or content) and import its examples.

    Raises:
        ImportFileInvalid: the file cannot be read; nothing is written.
    """
    parsed = file_parse(data, filename=filename, fmt=fmt, languages=languages)
    report = examples_import(parsed.rows, create_intents=create_intents, dry_run=dry_run)
    report.invalid = sorted([*parsed.invalid, *report.invalid], key=lambda r: (r.source, r.line))
    report.notes = [*parsed.notes, *report.notes]
    return report


@transaction.atomic
def examples_import(
    rows: Iterable[ExampleRow], *, create_intents: bool, dry_run: bool
) -> ImportReport:
    """Add the rows' examples to their intents in one transaction; duplicates are skipped.

    Intent names are made snake_case identifiers (renames reported). Unknown intents are
    created (inactive, language-model replies, for staff to review) when create_intents, else
    their rows are skipped. A dry run reports the same counts and writes nothing.
    """
    report = ImportReport(dry_run=dry_run)
    accepted: list[tuple[str, str, list[Entity]]] = []
    for row in rows:
        example = _clean(row, report)
        if example is not None:
            accepted.append(example)
    names = {name for name, _, _ in accepted}
    intents = {i.name: i for i in Intent.objects.filter(name__in=names)}
    missing = sorted(names - set(intents))
    if not create_intents:
        skipped = Counter(name for name, _, _ in accepted if name in missing)
        report.unknown_intents = dict(sorted(skipped.items()))
        accepted = [a for a in accepted if a[0] in intents]
        missing = []
    report.intents_created = missing
    seen = set(
        IntentExample.objects.filter(intent__name__in=names).values_list("intent__name", "text")
    )
    new: list[tuple[str, str, list[Entity]]] = []
    for name, text, entities in accepted:
        if (name, text) in seen:
            report.duplicates += 1
        else:
            seen.add((name, text))
            new.append((name, text, entities))
    report.added = len(new)
    if dry_run:
        return report
    original = {new_name: old for old, new_name in report.renamed.items()}
    for name in missing:
        intents[name] = Intent.objects.create(
            name=name,
            display_name=original.get(name, "")[:200],
            reply_mode=ReplyMode.LLM,
            active=False,
        )
    IntentExample.objects.bulk_create(
        [IntentExample(intent=intents[n], text=t, entities=e) for n, t, e in new],
        batch_size=500,
        ignore_conflicts=True,  # a concurrent import of the same file: its rows win
    )
    return report


def _clean(row: ExampleRow, report: ImportReport) -> tuple[str, str, list[Entity]] | None:
    """(intent, text, entities) of a row, text stripped; None (reported) when unusable."""
    stripped = row.text.lstrip()
    shift = len(row.text) - len(stripped)
    text = stripped.rstrip()
    problem = ""
    if not text:
        problem = "the text is empty"
    elif len(text) > MAX_TEXT:
        problem = f"the text is longer than {MAX_TEXT} characters ({len(text)})"
    elif "\n" in text or "\r" in text:
        problem = "the text spans several lines"
    elif _CONTROL.search(text):
        problem = "the text contains control characters"
    elif not row.intent.strip():
        problem = "no intent"
    if problem:
        report.invalid.append(InvalidRow(row.line, problem, row.text[:100], row.source))
        return None
    intent = row.intent.strip()
    if not is_identifier(intent):
        new_name = identifier_from(intent)
        report.renamed[intent] = new_name
        intent = new_name
    entities = [
        Entity(start=e["start"] - shift, end=e["end"] - shift, entity=e["entity"], value=e["value"])
        for e in row.entities
        if e["start"] >= shift and e["end"] - shift <= len(text)
    ]
    return intent, text, entities


def examples_export(*, fmt: Format, intent_ids: Collection[int] | None = None) -> ExportFile:
    """Every example of the given intents (all when None) as a CSV, JSONL or Rasa YAML file."""
    examples = IntentExample.objects.order_by("intent__name", "id")
    if intent_ids is not None:
        examples = examples.filter(intent_id__in=intent_ids)
    rows = examples.values_list("intent__name", "text", "entities").iterator(chunk_size=2000)
    extension, content_type = _EXPORT_TYPES[fmt]
    content = WRITERS[fmt](rows).encode("utf-8")
    return ExportFile(content, f"intent-examples.{extension}", content_type)
