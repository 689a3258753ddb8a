"""Response templates: "{slot}" placeholders, "{{" and "}}" for literal braces.

A tiny format of our own rather than str.format: staff write these, and str.format would also
accept attribute and index lookups ("{meal.__class__}") that have no business in a reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def template_placeholders(text: str) -> list[str]:
    """The placeholder names in a template, in order of appearance, without repeats.

    Raises:
        ValueError: a lone brace or a placeholder that is not a slot-like name.
    """
    names: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(
                f"Lone {token!r} at position {match.start() + 1}: write {token * 2} for a "
                "literal brace."
            )
        if not _NAME.match(name):
            raise ValueError(
                f"{token} is not a placeholder: use a slot name in lowercase snake_case, "
                "e.g. {meal}."
            )
        if name not in names:
            names.append(name)
    return names


def template_fill(text: str, value_for: Callable[[str], str]) -> str:
    """Replace each placeholder with value_for(name); the template must be valid."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return value_for(match.group(1))

    return _TOKEN.sub(replace, text)


def template_unknown_placeholders(text: str, slot_names: set[str] | frozenset[str]) -> list[str]:
    """Placeholders that name no slot (syntax errors raise ValueError, as above)."""
    return [name for name in template_placeholders(text) if name not in slot_names]
