"""Dialogflow ES agent exports: a zip of intents/<Name>.json and <Name>_usersays_<lang>.json."""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Collection
from typing import Any

from nlu.exceptions import ImportFileInvalid
from nlu.exchange.rows import Entity, ExampleRow, InvalidRow, Parsed

# An agent export is a few MB at most; these bound what a hostile archive can make us inflate.
MAX_UNCOMPRESSED_BYTES = 20 * 1024 * 1024
MAX_ENTRIES = 5000
_USERSAYS = re.compile(r"^(?P<stem>.+)_usersays_(?P<lang>[A-Za-z]{2,3}(?:-[A-Za-z0-9]+)*)\.json\Z")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
    OSError,
    ValueError,
)


def dialogflow_parse(data: bytes, *, languages: Collection[str] | None = None) -> Parsed:
    """The training phrases of every intent in the languages asked for (all when None).

    A language "zh" also takes "zh-cn", "zh-hk", ... Template-mode phrases are skipped.

    Raises:
        ImportFileInvalid: not a zip, too large, encrypted, or without intents/ files.
    """
    files = _read_intents(data)
    wanted = {lang.strip().lower() for lang in languages or () if lang.strip()}
    parsed = Parsed()
    names: dict[str, str] = {}  # file stem → the intent's display name
    for path, content in files.items():
        if not _USERSAYS.match(_basename(path)):
            intent = _load(path, content, parsed)
            if isinstance(intent, dict) and isinstance(intent.get("name"), str):
                names[_stem(path)] = intent["name"]
                if intent.get("fallbackIntent"):
                    parsed.notes.append(
                        f"{intent['name']!r} is a fallback intent: its phrases are negative "
                        "examples in Dialogflow; consider moving them to out_of_scope."
                    )
    templates = 0
    seen_languages: set[str] = set()
    for path, content in sorted(files.items()):
        match = _USERSAYS.match(_basename(path))
        if match is None:
            continue
        lang = match["lang"].lower()
        seen_languages.add(lang)
        if wanted and not any(lang == w or lang.startswith(w + "-") for w in wanted):
            continue
        stem = _dirname(path) + match["stem"]
        intent = names.get(stem, match["stem"])
        entries = _load(path, content, parsed)
        if not isinstance(entries, list):
            parsed.invalid.append(InvalidRow(1, "expected a list of phrases", source=path))
            continue
        for number, entry in enumerate(entries, start=1):
            if isinstance(entry, dict) and entry.get("isTemplate"):
                templates += 1
                continue
            row = _phrase(entry)
            if row is None:
                parsed.invalid.append(InvalidRow(number, "not a training phrase", source=path))
            else:
                text, entities = row
                parsed.rows.append(ExampleRow(number, text, intent, entities, source=path))
    if templates:
        parsed.notes.append(f"{templates} template-mode phrases (@entity:alias) skipped.")
    if wanted and not parsed.rows and seen_languages:
        parsed.notes.append(
            f"No phrases in {', '.join(sorted(wanted))}; the agent has "
            f"{', '.join(sorted(seen_languages))}."
        )
    return parsed


def _read_intents(data: bytes) -> dict[str, bytes]:
    """The JSON files under intents/, each read within the archive's size budget."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ImportFileInvalid(f"The zip file has more than {MAX_ENTRIES} files.")
        wanted = [i for i in infos if not i.is_dir() and _is_intent_file(i.filename)]
        # file_size is what the archive claims; zipfile never inflates past it (CRC checked).
        if sum(i.file_size for i in wanted) > MAX_UNCOMPRESSED_BYTES:
            raise ImportFileInvalid(
                f"The intents in this zip file would unpack to more than "
                f"{MAX_UNCOMPRESSED_BYTES // 2**20} MB."
            )
        files = {i.filename: archive.read(i) for i in wanted}
    except _ZIP_ERRORS as exc:
        raise ImportFileInvalid(
            f"This zip file cannot be read ({exc}). Export the agent again from the Dialogflow "
            "console (Settings → Export and Import → Export as ZIP)."
        ) from None
    if not files:
        raise ImportFileInvalid(
            "This zip file has no intents/ folder: it is not a Dialogflow ES agent export."
        )
    return files


def _is_intent_file(path: str) -> bool:
    parts = path.split("/")
    return len(parts) >= 2 and parts[-2] == "intents" and parts[-1].endswith(".json")


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _dirname(path: str) -> str:
    return path[: len(path) - len(_basename(path))]


def _stem(path: str) -> str:
    return path.removesuffix(".json")


def _load(path: str, content: bytes, parsed: Parsed) -> Any:
    """A JSON file of the archive; None (and a row saying why) when it is broken."""
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        parsed.invalid.append(InvalidRow(1, f"not valid UTF-8 JSON ({exc})", source=path))
        return None


def _phrase(entry: Any) -> tuple[str, list[Entity]] | None:
    """The text of a phrase (its parts joined) and its annotated parameters."""
    parts = entry.get("data") if isinstance(entry, dict) else None
    if not isinstance(parts, list):
        return None
    text = ""
    entities: list[Entity] = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            return None
        chunk = part["text"]
        meta = part.get("meta") if isinstance(part.get("meta"), str) else ""
        alias = part.get("alias") if isinstance(part.get("alias"), str) else ""
        if (alias or meta) and meta != "@sys.ignore" and chunk.strip():
            # The parameter name (alias) is what a slot would be called; else the entity type.
            name = alias or meta.removeprefix("@")
            entities.append(
                Entity(start=len(text), end=len(text) + len(chunk), entity=name, value=chunk)
            )
        text += chunk
    return text, entities
