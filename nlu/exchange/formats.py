"""File formats: which one a file is, CSV and JSONL read and written, dispatch to the others."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable
from enum import StrEnum

from nlu.exceptions import ImportFileInvalid
from nlu.exchange.dialogflow import dialogflow_parse
from nlu.exchange.rasa import rasa_parse, rasa_write
from nlu.exchange.rows import Entity, ExampleRow, InvalidRow, Parsed, entities_clean

MAX_FILE_BYTES = 20 * 1024 * 1024
# A cell starting with one of these is a formula to Excel and LibreOffice (CSV injection):
# the export prefixes such texts with an apostrophe and the import takes it off again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    RASA = "rasa"
    DIALOGFLOW = "dialogflow"


EXTENSIONS = {
    ".csv": Format.CSV,
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
    ".yml": Format.RASA,
    ".yaml": Format.RASA,
    ".zip": Format.DIALOGFLOW,
}


def format_detect(filename: str, data: bytes) -> Format:
    """The format from the file's extension, else from its first bytes.

    Raises:
        ImportFileInvalid: neither tells.
    """
    lowered = filename.lower()
    for extension, fmt in EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    if data.startswith(b"PK\x03\x04"):
        return Format.DIALOGFLOW
    head = data[:4096].decode("utf-8-sig", errors="ignore").lstrip()
    first_line = head.split("\n", 1)[0].lower()
    if head.startswith("{"):
        return Format.JSONL
    if "nlu:" in head or head.startswith("version:"):
        return Format.RASA
    if "text" in first_line and "intent" in first_line:
        return Format.CSV
    raise ImportFileInvalid(
        "Could not tell the format of this file. Use a .csv (text,intent), .jsonl, Rasa .yml "
        "or Dialogflow .zip file, or choose the format."
    )


def file_parse(
    data: bytes,
    *,
    filename: str,
    fmt: Format | None = None,
    languages: Collection[str] | None = None,
) -> Parsed:
    """Every example of an uploaded file; `languages` applies to Dialogflow agents only.

    Raises:
        ImportFileInvalid: the file cannot be read at all (size, encoding, syntax).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileInvalid(f"The file is larger than {MAX_FILE_BYTES // 2**20} MB.")
    if not data.strip():
        raise ImportFileInvalid("The file is empty.")
    fmt = fmt or format_detect(filename, data)
    if fmt == Format.DIALOGFLOW:
        return dialogflow_parse(data, languages=languages)
    text = _decode(data)
    if fmt == Format.RASA:
        if text.lstrip().startswith("## intent:"):
            raise ImportFileInvalid(
                "This is Rasa 1.x Markdown. Convert it first: rasa data convert nlu -f yaml."
            )
        return rasa_parse(text)
    return csv_parse(text) if fmt == Format.CSV else jsonl_parse(text)


def _decode(data: bytes) -> str:
    """UTF-8 text, with or without a byte order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileInvalid(
            f"The file is not UTF-8 text (line {line}). Save it as UTF-8 (in Excel: "
            '"CSV UTF-8") and upload it again.'
        ) from None


def csv_parse(text: str) -> Parsed:
    """A CSV file with a header naming the `text` and `intent` columns (others ignored).

    Raises:
        ImportFileInvalid: no such header, or a line the CSV reader cannot split.
    """
    # Excel writes ";" or tabs in some locales: the header line tells which.
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    parsed = Parsed()
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        if "text" not in header or "intent" not in header:
            raise ImportFileInvalid(
                'The first line of a CSV file must name the columns "text" and "intent" '
                f"(found: {', '.join(header) or 'nothing'})."
            )
        text_at, intent_at = header.index("text"), header.index("intent")
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(cells) <= max(text_at, intent_at):
                    parsed.invalid.append(InvalidRow(line, "missing the text or intent column"))
                else:
                    example = _csv_unescape(cells[text_at])
                    parsed.rows.append(ExampleRow(line, example, cells[intent_at].strip()))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileInvalid(
            f"The CSV file cannot be read at line {reader.line_num}: {exc}."
        ) from None
    return parsed


def _csv_unescape(cell: str) -> str:
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


def csv_write(examples: Iterable[tuple[str, str, list[Entity]]]) -> str:
    """CSV with a `text,intent` header; entities are not kept (use JSONL or Rasa YAML)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["text", "intent"])
    for intent, text, _entities in examples:
        writer.writerow(["'" + text if text.startswith(_FORMULA_START) else text, intent])
    return out.getvalue()


def jsonl_parse(text: str) -> Parsed:
    """One JSON object per line with "text" and "intent"; "entities" kept when they fit."""
    parsed = Parsed()
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            parsed.invalid.append(InvalidRow(line, f"not valid JSON ({exc.args[0]})", raw[:100]))
            continue
        if not isinstance(item, dict):
            parsed.invalid.append(InvalidRow(line, "not a JSON object", raw[:100]))
            continue
        example, intent = item.get("text"), item.get("intent")
        if not isinstance(example, str) or not isinstance(intent, str):
            parsed.invalid.append(InvalidRow(line, 'needs "text" and "intent" strings', raw[:100]))
            continue
        entities = entities_clean(example, item.get("entities", []))
        if entities is None:
            parsed.notes.append(f"Line {line}: entities do not fit the text; imported without.")
        parsed.rows.append(ExampleRow(line, example, intent.strip(), entities or []))
    return parsed


def jsonl_write(examples: Iterable[tuple[str, str, list[Entity]]]) -> str:
    """One {"text", "intent"} object per line, with "entities" when there are some."""
    lines = []
    for intent, text, entities in examples:
        item: dict[str, object] = {"text": text, "intent": intent}
        if entities:
            item["entities"] = entities
        lines.append(json.dumps(item, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


WRITERS = {Format.CSV: csv_write, Format.JSONL: jsonl_write, Format.RASA: rasa_write}
