"""Rasa YAML NLU training data (2.x/3.x): read intents' examples, write version 3.1."""

from __future__ import annotations

import re
from collections.abc import Iterable

import yaml

from nlu.exceptions import ImportFileInvalid
from nlu.exchange.annotations import annotations_parse, annotations_write
from nlu.exchange.rows import Entity, ExampleRow, InvalidRow, Parsed

# Entries of the nlu: list that are not examples of an intent.
_OTHER_ENTRIES = ("synonym", "regex", "lookup")
# What YAML refuses in a document (yaml.reader.Reader.NON_PRINTABLE).
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]+")


def rasa_parse(text: str) -> Parsed:
    """Examples of every `- intent:` entry; synonyms, regexes and lookups are skipped.

    Raises:
        ImportFileInvalid: not YAML, or no `nlu:` list.
    """
    try:
        # compose, not load: nodes keep their line numbers, and no tag is ever constructed.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ImportFileInvalid(f"This is not valid YAML{where}: {problem}.") from None
    nlu = _get(root, "nlu")
    if not isinstance(nlu, yaml.SequenceNode):
        raise ImportFileInvalid(
            'This YAML file has no "nlu:" list; a Rasa NLU file looks like '
            '"nlu:\\n- intent: greet\\n  examples: |\\n    - hello".'
        )
    parsed = Parsed()
    skipped = dict.fromkeys(_OTHER_ENTRIES, 0)
    for entry in nlu.value:
        kind = next((k for k in (*_OTHER_ENTRIES, "intent") if _get(entry, k) is not None), None)
        if kind in skipped:
            skipped[kind] += 1
        elif kind == "intent":
            _parse_intent(entry, parsed)
        else:
            parsed.invalid.append(
                InvalidRow(entry.start_mark.line + 1, "an nlu entry without intent: was skipped")
            )
    for kind, count in skipped.items():
        if count:
            parsed.notes.append(f"{count} {kind}: entries skipped (only examples are imported).")
    others = [k for k in _keys(root) if k not in ("version", "nlu")]
    if others:
        parsed.notes.append(f"Sections skipped (not examples): {', '.join(others)}.")
    return parsed


def _parse_intent(entry: yaml.Node, parsed: Parsed) -> None:
    name_node = _get(entry, "intent")
    line = entry.start_mark.line + 1
    if not isinstance(name_node, yaml.ScalarNode) or not name_node.value.strip():
        parsed.invalid.append(InvalidRow(line, "the intent: entry has no name"))
        return
    intent = name_node.value.strip()
    examples = _get(entry, "examples")
    if isinstance(examples, yaml.ScalarNode):
        # In a literal block (|) each line of the value is one line of the file, after the "|".
        first = examples.start_mark.line + (2 if examples.style == "|" else 1)
        for offset, raw in enumerate(examples.value.splitlines()):
            _add_line(parsed, intent, raw, first + offset if examples.style == "|" else first)
    elif isinstance(examples, yaml.SequenceNode):
        # The long form: "- text: |" items, each with its own metadata.
        for item in examples.value:
            text = _get(item, "text") if isinstance(item, yaml.MappingNode) else item
            if isinstance(text, yaml.ScalarNode):
                _add_line(parsed, intent, text.value.strip(), item.start_mark.line + 1, dash=False)
            else:
                parsed.invalid.append(InvalidRow(item.start_mark.line + 1, "not an example text"))
    else:
        parsed.invalid.append(InvalidRow(line, f"intent {intent!r} has no examples: block"))


def _add_line(parsed: Parsed, intent: str, raw: str, line: int, *, dash: bool = True) -> None:
    raw = raw.strip()
    if not raw:
        return
    if dash:
        if not raw.startswith("-"):
            parsed.invalid.append(InvalidRow(line, 'an example line must start with "- "', raw))
            return
        raw = raw[1:].strip()
    try:
        text, entities = annotations_parse(raw)
    except ValueError as exc:
        parsed.invalid.append(InvalidRow(line, str(exc), raw))
        return
    parsed.rows.append(ExampleRow(line=line, text=text, intent=intent, entities=entities))


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value of a key of a mapping node; None for anything else."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value
    return None


def _keys(node: yaml.Node | None) -> list[str]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]


def rasa_write(examples: Iterable[tuple[str, str, list[Entity]]]) -> str:
    """Rasa 3.1 NLU YAML of (intent, text, entities), intents in order of first appearance."""
    by_intent: dict[str, list[str]] = {}
    for intent, text, entities in examples:
        line = annotations_write(text, entities)
        # A literal block holds one example per line, and YAML refuses control characters.
        line = _LINE_BREAKS.sub(" ", _NON_PRINTABLE.sub("", line)).strip()
        if line:
            by_intent.setdefault(intent, []).append(line)
    out = ['version: "3.1"', "nlu:"]
    for intent, lines in by_intent.items():
        # Intent names are identifiers ([a-z0-9_]): safe as plain YAML scalars.
        out.append(f"- intent: {intent}")
        out.append("  examples: |")
        out.extend(f"    - {line}" for line in lines)
    if not by_intent:
        out[-1] = "nlu: []"
    return "\n".join(out) + "\n"
