"""Rasa's inline entity markup: "[Paris](city)", '[NYC]{"entity": "city", "value": "New York"}'."""

from __future__ import annotations

import json
import re
from typing import Any

from nlu.exchange.rows import Entity

# Rasa's own pattern (rasa/shared/nlu/training_data/entities_parser.py): a bracketed surface
# followed by (entity), (entity:value), {json object} or [json objects] for several entities.
_ANNOTATION = re.compile(
    r"\[(?P<surface>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)"
    r"|\{(?P<dict>[^}]+?)\}"
    r"|\[(?P<list>.*?)\])"
)
_SIMPLE_NAME = re.compile(r"^[^\s:()\[\]{}]+\Z")


def annotations_parse(line: str) -> tuple[str, list[Entity]]:
    """The plain text of an annotated example and its entities.

    Raises:
        ValueError: an annotation's JSON is malformed or names no entity.
    """
    parts: list[str] = []
    entities: list[Entity] = []
    position = 0  # in the plain text
    last = 0  # in the annotated line
    for match in _ANNOTATION.finditer(line):
        before = line[last : match.start()]
        parts.append(before)
        position += len(before)
        surface = match["surface"]
        for name, value in _entity_values(match, surface):
            entities.append(
                Entity(start=position, end=position + len(surface), entity=name, value=value)
            )
        parts.append(surface)
        position += len(surface)
        last = match.end()
    parts.append(line[last:])
    return "".join(parts), entities


def _entity_values(match: re.Match[str], surface: str) -> list[tuple[str, str]]:
    """(entity, value) pairs of one annotation."""
    if match["entity"] is not None:
        return [(match["entity"].strip(), (match["value"] or surface).strip())]
    raw = "{" + match["dict"] + "}" if match["dict"] is not None else "[" + match["list"] + "]"
    try:
        data: Any = json.loads(raw)
    except ValueError:
        raise ValueError(f"the entity annotation {raw} is not valid JSON") from None
    items = data if isinstance(data, list) else [data]
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("entity"), str):
            raise ValueError(f'the entity annotation {raw} needs an "entity" name')
        value = item.get("value", surface)
        pairs.append((item["entity"], value if isinstance(value, str) else json.dumps(value)))
    return pairs


def annotations_write(text: str, entities: list[Entity]) -> str:
    """The text with its entities written inline; overlapping spans keep the first one."""
    spans: dict[tuple[int, int], list[Entity]] = {}
    for entity in sorted(entities, key=lambda e: (e["start"], e["end"])):
        spans.setdefault((entity["start"], entity["end"]), []).append(entity)
    out: list[str] = []
    last = 0
    for (start, end), group in spans.items():
        if start < last or end > len(text):
            continue  # cannot be written inline
        surface = text[start:end]
        out.append(text[last:start])
        out.append(f"[{surface}]{_annotation(surface, group)}")
        last = end
    out.append(text[last:])
    return "".join(out)


def _annotation(surface: str, group: list[Entity]) -> str:
    """ "(entity)" when the value is the surface text, the JSON form otherwise."""
    if len(group) == 1:
        entity = group[0]
        if entity["value"] == surface and _SIMPLE_NAME.match(entity["entity"]):
            return f"({entity['entity']})"
        return json.dumps(_as_dict(entity, surface), ensure_ascii=False)
    return json.dumps([_as_dict(e, surface) for e in group], ensure_ascii=False)


def _as_dict(entity: Entity, surface: str) -> dict[str, str]:
    data = {"entity": entity["entity"]}
    if entity["value"] != surface:
        data["value"] = entity["value"]
    return data
