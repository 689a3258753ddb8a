"""What every parser produces: example rows, rows it could not read, notes for staff."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, TypedDict

from nlu.models import identifier_validator

# Intent.name is a CharField(100).
MAX_NAME = 100
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")


class Entity(TypedDict):
    """An annotated value: text[start:end] is what the user typed, value what it means."""

    start: int
    end: int
    entity: str
    value: str


@dataclass
class ExampleRow:
    """One example as read from a file; `line` counts from 1 (an entry number in JSON files)."""

    line: int
    text: str
    intent: str
    entities: list[Entity] = field(default_factory=list)
    source: str = ""  # the file inside an archive; "" for a single file


@dataclass
class InvalidRow:
    """A row that was not imported, and why, in words staff understand."""

    line: int
    reason: str
    text: str = ""
    source: str = ""

    @property
    def where(self) -> str:
        return f"{self.source}, entry {self.line}" if self.source else f"line {self.line}"


@dataclass
class Parsed:
    """A whole file: its rows, the rows it could not read, what it skipped on purpose."""

    rows: list[ExampleRow] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def identifier_from(name: str) -> str:
    """An intent name in our rules (lowercase snake_case, starting with a letter).

    Accents are dropped ("Café" → "cafe"), every run of other characters becomes one "_". A
    name with no Latin letter or digit at all ("订餐") gets a stable "intent_<hash>" name.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    ident = _NOT_IDENTIFIER.sub("_", ascii_name).strip("_")
    if not ident:
        return "intent_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    if not ident[0].isalpha():
        ident = "intent_" + ident
    return ident[:MAX_NAME].rstrip("_")


def is_identifier(name: str) -> bool:
    """Whether a name already follows the intent name rules."""
    return bool(identifier_validator.regex.match(name)) and len(name) <= MAX_NAME


def entities_clean(text: str, raw: Any) -> list[Entity] | None:
    """Entities from a file, checked against the text; None when they do not fit it."""
    if not isinstance(raw, list):
        return None
    entities: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        start, end, name = item.get("start"), item.get("end"), item.get("entity")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            return None
        if not isinstance(name, str) or not name:
            return None
        value = item.get("value", text[start:end])
        entities.append(Entity(start=start, end=end, entity=name, value=str(value)))
    return sorted(entities, key=lambda e: (e["start"], e["end"]))
