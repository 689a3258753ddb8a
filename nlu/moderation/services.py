"""Writes of the sensitive-word list: one word, in bulk, from a file or a seed list; and exports.

Every write that changes something bumps the words' version after it commits
(registry.words_changed), so every process rebuilds its matcher within seconds.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from chatsite.exceptions import ApplicationError
from nlu.exceptions import ImportFileInvalid
from nlu.models import SensitiveWord, SensitiveWordAction, SensitiveWordCategory
from nlu.moderation.normalize import normalize_word
from nlu.moderation.registry import words_changed
from nlu.moderation.seeds import (
    SeedSourceUnavailable,
    seed_review_reason,
    seed_source,
    seed_words,
)

FileFormat = Literal["txt", "csv"]
FORMATS: tuple[FileFormat, ...] = ("txt", "csv")
MAX_WORD = 64
MAX_NORMALISED = SensitiveWord._meta.get_field("normalised").max_length or 255
MAX_NOTE = SensitiveWord._meta.get_field("note").max_length or 500
MAX_FILE_BYTES = 5 * 2**20  # about 300,000 words: far more than any list we know of
CSV_COLUMNS = ("word", "category", "action", "language", "active", "source", "note")
# Tabs and line breaks too: a word is one line of a .txt file and one cell of a CSV.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?\Z")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}\Z")
# A cell starting with one of these is a formula to Excel and LibreOffice (CSV injection): the
# export prefixes it with an apostrophe and the import takes that off again.
_FORMULA_START = ("=", "+", "-", "@")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}
# Rows per query when looking up or writing many words (SQLite allows 32,766 parameters).
_CHUNK = 500


class _Problem(Exception):
    """Why a value is refused: a stable code and a message for staff."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message

    def as_validation_error(self) -> ValidationError:
        return ValidationError({self.field: ValidationError(self.message, code=self.code)})


@dataclass(frozen=True)
class WordRow:
    """A word to import. None: the import's default for a new word, kept for a listed one."""

    line: int
    word: str
    category: str | None = None
    action: str | None = None
    language: str | None = None
    is_active: bool | None = None
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class LineError:
    """A line that was not imported: where, a stable code, and why in words staff understand."""

    line: int
    code: str
    message: str
    text: str = ""


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    dry_run: bool = False
    created: int = 0
    updated: int = 0
    skipped: int = 0  # already listed and unchanged, or repeated in the file
    errors: list[LineError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- one word -------------------------------------------------------------------------------------


def sensitive_word_clean(
    *,
    word: str,
    category: str,
    action: str,
    language: str = "",
    note: str = "",
    exclude_pk: int | None = None,
) -> dict[str, Any]:
    """The values as stored (word stripped, normalised form added, language lowercased).

    `exclude_pk`: the word being edited, which may keep its own spelling.

    Raises:
        ValidationError: by field, with a stable code (empty, too_long, normalises_to_nothing,
            duplicate, ...).
    """
    try:
        values = _clean(word=word, category=category, action=action, language=language, note=note)
    except _Problem as problem:
        raise problem.as_validation_error() from None
    _check_unlisted(values["normalised"], values["category"], exclude_pk=exclude_pk)
    return values


@transaction.atomic
def sensitive_word_create(
    *,
    word: str,
    category: str = SensitiveWordCategory.OTHER,
    action: str = SensitiveWordAction.MASK,
    language: str = "",
    is_active: bool = True,
    source: str = "staff",
    note: str = "",
) -> SensitiveWord:
    """Add a word.

    Raises:
        ValidationError: a value is refused, or the word is already listed in that category.
    """
    values = sensitive_word_clean(
        word=word, category=category, action=action, language=language, note=note
    )
    try:
        _check_source(source)
    except _Problem as problem:
        raise problem.as_validation_error() from None
    try:
        with transaction.atomic():  # a savepoint: a concurrent add of the same word wins
            created = SensitiveWord.objects.create(**values, is_active=is_active, source=source)
    except IntegrityError:
        raise _duplicate(values["word"], values["category"]) from None
    transaction.on_commit(words_changed)
    return created


@transaction.atomic
def sensitive_word_update(
    *,
    sensitive_word: SensitiveWord,
    word: str | None = None,
    category: str | None = None,
    action: str | None = None,
    language: str | None = None,
    is_active: bool | None = None,
    note: str | None = None,
) -> SensitiveWord:
    """Change the given fields of a word (None: leave as is); saves only when something changed.

    Raises:
        ValidationError: a value is refused, or the new spelling is listed already.
    """
    obj = sensitive_word
    values = sensitive_word_clean(
        word=obj.word if word is None else word,
        category=obj.category if category is None else category,
        action=obj.action if action is None else action,
        language=obj.language if language is None else language,
        note=obj.note if note is None else note,
        exclude_pk=obj.pk,
    )
    if is_active is not None:
        values["is_active"] = is_active
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if not changed:
        return obj
    for name in changed:
        setattr(obj, name, values[name])
    try:
        with transaction.atomic():
            obj.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise _duplicate(values["word"], values["category"]) from None
    transaction.on_commit(words_changed)
    return obj


@transaction.atomic
def sensitive_word_delete(*, sensitive_word: SensitiveWord) -> None:
    """Remove a word from the list."""
    sensitive_word.delete()
    transaction.on_commit(words_changed)


# --- in bulk --------------------------------------------------------------------------------------


@transaction.atomic
def sensitive_words_delete(*, queryset: QuerySet[SensitiveWord]) -> int:
    """Remove the words; returns how many."""
    deleted, _ = SensitiveWord.objects.filter(pk__in=queryset.values("pk")).delete()
    if deleted:
        transaction.on_commit(words_changed)
    return deleted


@transaction.atomic
def sensitive_words_set_active(*, queryset: QuerySet[SensitiveWord], is_active: bool) -> int:
    """Activate or deactivate the words; returns how many changed."""
    return _bulk_set(queryset, is_active=is_active)


@transaction.atomic
def sensitive_words_set_action(*, queryset: QuerySet[SensitiveWord], action: str) -> int:
    """Give the words one action (block, mask or flag); returns how many changed.

    Raises:
        ValidationError: not an action.
    """
    try:
        _check_choice("action", action, SensitiveWordAction.values)
    except _Problem as problem:
        raise problem.as_validation_error() from None
    return _bulk_set(queryset, action=action)


def _bulk_set(queryset: QuerySet[SensitiveWord], **values: Any) -> int:
    # Through the primary keys: the admin's queryset may be sliced, ordered or distinct.
    rows = SensitiveWord.objects.filter(pk__in=queryset.values("pk"))
    for name, value in values.items():
        rows = rows.exclude(**{name: value})
    # update() skips auto_now: updated_at is set by hand, the registry's fingerprint reads it.
    changed = rows.update(**values, updated_at=timezone.now())
    if changed:
        transaction.on_commit(words_changed)
    return changed


# --- import and export ----------------------------------------------------------------------------


def sensitive_words_import(
    *,
    data: str | bytes | Iterable[WordRow],
    fmt: FileFormat | None = None,
    filename: str = "",
    category: str = SensitiveWordCategory.OTHER,
    action: str = SensitiveWordAction.MASK,
    language: str = "",
    source: str = "import",
    update_existing: bool = True,
    dry_run: bool = False,
) -> ImportReport:
    """Add the words of a file (.txt one per line, .csv with a header) or of rows.

    Lines that cannot be imported are reported with a stable code and skipped; the others are
    written all the same. A word listed already in its category is updated only with the values
    a CSV row gives explicitly (never with the defaults), and not at all unless update_existing;
    nothing is ever deleted. fmt None: from the filename (.csv, else .txt).

    Raises:
        ImportFileInvalid: the file cannot be read at all (size, encoding, binary, no header).
        ValidationError: a default (category, action, language, source) is refused.
    """
    try:
        defaults = _clean(word="x", category=category, action=action, language=language, note="")
        _check_source(source)
    except _Problem as problem:
        raise problem.as_validation_error() from None
    report = ImportReport(dry_run=dry_run)
    if isinstance(data, str | bytes):
        rows = _parse_file(data, fmt or _format_from(filename), report)
    else:
        rows = list(data)
    accepted = _accepted(rows, defaults, source, report)
    _write(accepted, update_existing=update_existing, report=report)
    return report


def sensitive_words_export(
    *, queryset: QuerySet[SensitiveWord] | None = None, fmt: FileFormat
) -> str:
    """The words (all when None) as a .txt file (one per line) or a CSV that imports back."""
    words = queryset if queryset is not None else SensitiveWord.objects.all()
    ordered = words.order_by("normalised", "category")
    if fmt == "txt":
        # One line per word: a word listed in several categories comes out once.
        pairs = ordered.values_list("normalised", "word").iterator(chunk_size=2000)
        spellings: dict[str, str] = {}
        for normalised, word in pairs:
            spellings.setdefault(normalised, word)
        return "".join(word + "\n" for word in spellings.values())
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = ordered.values_list(
        "word", "category", "action", "language", "is_active", "source", "note"
    ).iterator(chunk_size=2000)
    for word, cat, act, lang, active, src, note in rows:
        writer.writerow(
            [
                _csv_escape(word),
                cat,
                act,
                lang,
                "true" if active else "false",
                src,
                _csv_escape(note),
            ]
        )
    return out.getvalue()


def export_filename(fmt: FileFormat) -> str:
    return f"sensitive-words.{fmt}"


# --- seeding ------------------------------------------------------------------------------------


def sensitive_words_seed(
    *,
    sources: Sequence[str],
    action: str = SensitiveWordAction.MASK,
    category: str = SensitiveWordCategory.ABUSE,
    dry_run: bool = False,
) -> ImportReport:
    """Add the words of public lists (nlu.moderation.seeds); idempotent, existing words untouched.

    Each word keeps its list's key as its source. Entries that would mangle ordinary text (no
    letters, one character) are added inactive with a note, for staff to review.

    Raises:
        ApplicationError: a list is unknown, not licensed for use, or not installed.
    """
    rows: list[WordRow] = []
    for key in dict.fromkeys(sources):
        try:
            language = seed_source(key).language
            words = seed_words(key)
        except SeedSourceUnavailable as exc:
            raise ApplicationError(str(exc), code="seed_source_unavailable") from None
        for line, word in enumerate(words, start=1):
            reason = seed_review_reason(word)
            rows.append(
                WordRow(
                    line=line,
                    word=word,
                    language=language,
                    source=key,
                    is_active=False if reason else None,
                    note=reason or None,
                )
            )
    return sensitive_words_import(
        data=rows, category=category, action=action, update_existing=False, dry_run=dry_run
    )


# --- the parts ------------------------------------------------------------------------------------


def _clean(*, word: str, category: str, action: str, language: str, note: str) -> dict[str, Any]:
    stripped = word.strip()
    if not stripped:
        raise _Problem("word", "empty", "The word is empty.")
    if _CONTROL.search(stripped):
        raise _Problem(
            "word",
            "control_characters",
            "The word contains a line break, a tab or another control character.",
        )
    if len(stripped) > MAX_WORD:
        raise _Problem(
            "word", "too_long", f"The word is longer than {MAX_WORD} characters ({len(stripped)})."
        )
    normalised = normalize_word(stripped)
    if not normalised:
        raise _Problem(
            "word",
            "normalises_to_nothing",
            "Nothing of the word is left once normalised (only spaces, punctuation or symbols): "
            "it could never match.",
        )
    if len(normalised) > MAX_NORMALISED:
        raise _Problem("word", "too_long", "The word is too long once normalised.")
    _check_choice("category", category, SensitiveWordCategory.values)
    _check_choice("action", action, SensitiveWordAction.values)
    language = language.strip().lower()
    if language and not _LANGUAGE.match(language):
        raise _Problem(
            "language",
            "invalid_language",
            f'{language!r} is not a language code: use a short code such as "en" or "zh", '
            "or leave it empty for any language.",
        )
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise _Problem("note", "note_too_long", f"The note is longer than {MAX_NOTE} characters.")
    return {
        "word": stripped,
        "normalised": normalised,
        "category": category,
        "action": action,
        "language": language,
        "note": note,
    }


def _check_choice(name: str, value: str, allowed: list[str]) -> None:
    if value not in allowed:
        raise _Problem(
            name,
            f"invalid_{name}",
            f"Unknown {name} {value!r}: use one of {', '.join(allowed)}.",
        )


def _check_source(source: str) -> None:
    if not _SOURCE.match(source):
        raise _Problem(
            "source",
            "invalid_source",
            f"Unknown source {source!r}: use lowercase letters, digits, '-', '_' or '.', "
            "at most 50 characters (e.g. staff, ldnoobw-en).",
        )


def _check_unlisted(normalised: str, category: str, *, exclude_pk: int | None) -> None:
    existing = SensitiveWord.objects.filter(normalised=normalised, category=category)
    if exclude_pk is not None:
        existing = existing.exclude(pk=exclude_pk)
    other = existing.first()
    if other is not None:
        raise _duplicate(other.word, category)


def _duplicate(word: str, category: str) -> ValidationError:
    label = SensitiveWordCategory(category).label
    return ValidationError(
        {
            "word": ValidationError(
                f"{word!r} (or a spelling that normalises the same) is already listed under "
                f"{label}.",
                code="duplicate",
            )
        }
    )


def _format_from(filename: str) -> FileFormat:
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if not lowered or lowered.endswith((".txt", ".text", ".lst")) or "." not in lowered:
        return "txt"
    raise ImportFileInvalid(
        f"{filename} is neither a .txt nor a .csv file. From Excel, save as "
        '"CSV UTF-8 (comma delimited)".'
    )


def _parse_file(data: str | bytes, fmt: FileFormat, report: ImportReport) -> list[WordRow]:
    if fmt not in FORMATS:
        raise ImportFileInvalid(f"Unknown format {fmt!r}: use txt or csv.")
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise ImportFileInvalid(
                f"The file is larger than {MAX_FILE_BYTES // 2**20} MB; split it."
            )
        if b"\x00" in data[:8192]:
            raise ImportFileInvalid(
                "This is not a text file (it contains NUL bytes): upload a UTF-8 .txt or .csv; "
                'from Excel, save as "CSV UTF-8".'
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ImportFileInvalid(
                f"The file is not UTF-8 text (line {line}). Save it as UTF-8 (in Excel: "
                '"CSV UTF-8") and upload it again.'
            ) from None
    else:
        text = data.removeprefix("\ufeff")
    if not text.strip():
        raise ImportFileInvalid("The file is empty.")
    return _parse_csv(text, report) if fmt == "csv" else _parse_txt(text)


def _parse_txt(text: str) -> list[WordRow]:
    """One word per line; blank lines and "# " comment lines are skipped.

    "#" alone or followed by a space starts a comment (as in the public lists), so "#tag" is a
    word.
    """
    if _looks_like_csv_header(text):
        raise ImportFileInvalid(
            "This looks like a CSV file (its first line is a header with a word column): "
            "import it as CSV."
        )
    rows = []
    # split, not splitlines: line numbers must match what an editor shows (no \x0b, \x1c...).
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line and line != "#" and not line.startswith("# "):
            rows.append(WordRow(line=number, word=line))
    return rows


def _looks_like_csv_header(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0].strip().lower()
    cells = [c.strip() for c in re.split(r"[,;\t]", first)]
    return len(cells) > 1 and "word" in cells


def _parse_csv(text: str, report: ImportReport) -> list[WordRow]:
    """A header naming a word column, and optionally category, action, language, active, source,
    note; other columns are ignored. A line the CSV reader cannot split ends the file there (the
    rows before it are kept)."""
    first_line = text.split("\n", 1)[0]
    # Excel writes ";" or tabs in some locales: the header line tells which.
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[WordRow] = []
    line = 1
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        if "word" not in header:
            raise ImportFileInvalid(
                "The first line of a CSV file must name its columns: word, and optionally "
                f"{', '.join(CSV_COLUMNS[1:])} (found: {', '.join(header) or 'nothing'})."
            )
        at = {name: header.index(name) for name in CSV_COLUMNS if name in header}
        ignored = [name for name in header if name and name not in at]
        if ignored:
            report.notes.append(f"Columns ignored: {', '.join(ignored)}.")
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                row = _csv_row(line, cells, at, report)
                if row is not None:
                    rows.append(row)
            line = reader.line_num + 1
    except csv.Error as exc:
        report.errors.append(
            LineError(
                line,
                "unreadable_line",
                f"The CSV reader stopped here ({exc}); the lines after it were not read.",
            )
        )
    return rows


def _csv_row(
    line: int, cells: list[str], at: dict[str, int], report: ImportReport
) -> WordRow | None:
    def cell(name: str) -> str | None:
        position = at.get(name)
        if position is None or position >= len(cells):
            return None
        return cells[position].strip() or None

    word = cells[at["word"]] if at["word"] < len(cells) else ""
    active = cell("active")
    is_active: bool | None = None
    if active is not None:
        if active.lower() in _TRUE:
            is_active = True
        elif active.lower() in _FALSE:
            is_active = False
        else:
            report.errors.append(
                LineError(
                    line,
                    "invalid_active",
                    f"active must be true or false, not {active!r}.",
                    word[:100],
                )
            )
            return None
    category, action = cell("category"), cell("action")
    return WordRow(
        line=line,
        word=_csv_unescape(word),
        category=category.lower() if category else None,
        action=action.lower() if action else None,
        language=cell("language"),
        is_active=is_active,
        source=cell("source"),
        note=_csv_unescape(cell("note") or "") or None,
    )


def _csv_escape(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _csv_unescape(cell: str) -> str:
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


@dataclass
class _Accepted:
    row: WordRow
    values: dict[str, Any]  # every field of a new word
    explicit: dict[str, Any]  # the fields the row gave itself: what may change an existing word


def _accepted(
    rows: Iterable[WordRow], defaults: dict[str, Any], source: str, report: ImportReport
) -> list[_Accepted]:
    """The rows that can be imported, repeats within the file counted as skipped."""
    accepted: list[_Accepted] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        try:
            values = _clean(
                word=row.word,
                category=row.category or defaults["category"],
                action=row.action or defaults["action"],
                language=defaults["language"] if row.language is None else row.language,
                note=row.note or "",
            )
            if row.source is not None:
                _check_source(row.source)
        except _Problem as problem:
            report.errors.append(LineError(row.line, problem.code, problem.message, row.word[:100]))
            continue
        key = (values["normalised"], values["category"])
        if key in seen:
            report.skipped += 1
            continue
        seen.add(key)
        values["is_active"] = True if row.is_active is None else row.is_active
        values["source"] = row.source or source
        explicit = {
            name: values[name]
            for name, given in (
                ("action", row.action),
                ("language", row.language),
                ("is_active", row.is_active),
                ("note", row.note),
            )
            if given is not None
        }
        accepted.append(_Accepted(row, values, explicit))
    return accepted


def _write(accepted: list[_Accepted], *, update_existing: bool, report: ImportReport) -> None:
    """Create the new words and update the existing ones, in one transaction."""
    existing: dict[tuple[str, str], SensitiveWord] = {}
    normalised = sorted({a.values["normalised"] for a in accepted})
    for start in range(0, len(normalised), _CHUNK):
        for obj in SensitiveWord.objects.filter(normalised__in=normalised[start : start + _CHUNK]):
            existing[(obj.normalised, obj.category)] = obj
    new: list[SensitiveWord] = []
    changed: list[SensitiveWord] = []
    fields: set[str] = set()
    now = timezone.now()
    for item in accepted:
        obj = existing.get((item.values["normalised"], item.values["category"]))
        if obj is None:
            new.append(SensitiveWord(**item.values))
            continue
        differs = {k: v for k, v in item.explicit.items() if getattr(obj, k) != v}
        if not update_existing or not differs:
            report.skipped += 1
            continue
        for name, value in differs.items():
            setattr(obj, name, value)
        obj.updated_at = now  # bulk_update skips auto_now
        fields.update(differs)
        changed.append(obj)
    report.created, report.updated = len(new), len(changed)
    if report.dry_run or not (new or changed):
        return
    with transaction.atomic():
        # ignore_conflicts: a concurrent import of the same words keeps its rows, this one its.
        SensitiveWord.objects.bulk_create(new, batch_size=_CHUNK, ignore_conflicts=True)
        if changed:
            SensitiveWord.objects.bulk_update(
                changed, sorted({*fields, "updated_at"}), batch_size=_CHUNK
            )
        transaction.on_commit(words_changed)
