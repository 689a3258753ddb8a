"""Choice slots: which of a slot's options (by label, value or synonym) the message names."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from .numbers import EN_WORDS
from .text import CJK, Found, Text, negated, overlaps

if TYPE_CHECKING:
    from . import SlotSpec

_GENERIC_WORDS = {"set", "sets", "meal", "meals", "menu", "combo", "the", "a", "an", "of", "for"}
_GENERIC_WORDS |= {"and", "with", "option", "package", "deal", "special", "plan"}
_GENERIC_ZH = ("套餐", "套", "餐", "份", "款", "组合")
# Common ways of naming what a label says differently; extend as domains need.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "kids": ("kid", "kid's", "kids'", "child", "child's", "children", "children's", "childrens"),
    "kid": ("kids", "child", "children", "children's"),
    "children": ("kids", "kid", "kid's", "child", "children's"),
    "儿童": ("小孩", "孩子", "小朋友", "宝宝"),
    "for two": ("for 2", "two people", "two persons", "2 people", "2 persons", "couple's"),
    "双人": ("两人", "二人", "2人", "两个人", "情侣"),
    "single": ("one person", "for one", "1 person"),
    "单人": ("一人", "1人", "一个人"),
}  # fmt: skip


def _choice_phrases(choice: tuple[str, str, str], others: list[tuple[str, str, str]]) -> set[str]:
    """Words that name one choice: its labels, its value and the distinctive parts of them."""
    value, en, zh = choice
    full = {p.strip().lower() for p in (value, value.replace("_", " "), en, zh) if p.strip()}
    parts: set[str] = set(full)
    words = re.findall(r"[\w'’]+", en.lower())
    for i in range(len(words)):
        for j in range(i + 1, len(words) + 1):
            gram = words[i:j]
            if all(w in _GENERIC_WORDS for w in gram):
                continue
            if len(gram) == 1 and (gram[0] in EN_WORDS or gram[0].isdigit()):
                continue  # "two" alone is a quantity, never a choice
            parts.add(" ".join(gram))
    core = zh.strip()
    for suffix in _GENERIC_ZH:
        if core.endswith(suffix) and len(core) > len(suffix):
            parts.add(core[: -len(suffix)])
            break
    for phrase in list(parts):
        parts.update(_SYNONYMS.get(phrase, ()))
    # A part shared with another choice names neither ("set" in "Classic set" and "Kids set").
    other_words: set[str] = set()
    for other in others:
        if other != choice:
            other_words |= _choice_phrases_raw(other)
    return {p for p in parts if p in full or p not in other_words}


def _choice_phrases_raw(choice: tuple[str, str, str]) -> set[str]:
    value, en, zh = choice
    words = re.findall(r"[\w'’]+", en.lower())
    grams = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
    return grams | {value.lower(), zh.strip()}


def _phrase_pattern(phrase: str) -> str:
    if CJK.search(phrase):
        return re.escape(phrase)
    words = [re.escape(w).replace("'", "['’]") for w in phrase.split()]
    body = r"[\s_-]+".join(words)
    return rf"(?<![A-Za-z0-9]){body}(?:s|'s|es)?(?![A-Za-z0-9])"


_CHANGE_TO = re.compile(
    r"(?:改成|改为|换成|换|改|要|来)\s*(?:份|个)?$|"
    r"(?:make\s+(?:it|that|them)|(?:change|switch)\s+(?:[\w'’]+\s+){0,3}?to|instead|go\s+with)"
    r"\s+(?:the\s+|a\s+|an\s+)?$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=256)
def _choice_regex(slot: SlotSpec) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    """One regex for every phrase naming a choice of `slot`, longest first, and their values."""
    options: list[tuple[str, str]] = []
    for choice in slot.choices:
        for phrase in _choice_phrases(choice, list(slot.choices)):
            options.append((phrase, choice[0]))
    if not options:
        return None, ()
    options.sort(key=lambda o: len(o[0]), reverse=True)
    pattern = re.compile(
        "|".join(f"(?P<c{i}>{_phrase_pattern(p)})" for i, (p, _) in enumerate(options)),
        re.IGNORECASE,
    )
    return pattern, tuple(value for _, value in options)


def find_choice(t: Text, slot: SlotSpec, taken: list[tuple[int, int]]) -> list[Found]:
    """Every mention of a choice of `slot`."""
    pattern, values = _choice_regex(slot)
    if pattern is None:
        return []
    found: list[Found] = []
    for m in pattern.finditer(t.norm):
        if overlaps(m.start(), m.end(), taken):
            continue
        index = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
        found.append(Found(values[index], m.start(), m.end()))
    return found


def resolve_choice(found: list[Found], norm: str) -> Found | None:
    """One choice, or None when the text names several ("classic or kids?")."""
    kept = [f for f in found if not negated(norm, f.start)]
    if len({f.value for f in kept}) == 1:
        return kept[0]
    # "把经典套餐换成儿童套餐" / "change classic to the kids set": the target wins.
    targets = [f for f in kept if _CHANGE_TO.search(norm[max(0, f.start - 24) : f.start])]
    if len({f.value for f in targets}) == 1:
        return targets[-1]
    return None
