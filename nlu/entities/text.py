"""The text every finder works on: NFKC-normalised, with spans mapped back to the original.

Also the span helpers and the small patterns more than one kind of slot shares (CJK characters,
questions, negation before a value, lead-in fillers and polite tails around a clause).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


class Text:
    """NFKC text plus, for each of its characters, where it came from in the original."""

    def __init__(self, original: str) -> None:
        self.original = original
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        i = 0
        while i < len(original):
            # A base character and its combining marks normalise together (e + ́ → é).
            j = i + 1
            while j < len(original) and unicodedata.combining(original[j]):
                j += 1
            piece = unicodedata.normalize("NFKC", original[i:j])
            parts.append(piece)
            starts.extend([i] * len(piece))
            ends.extend([j] * len(piece))
            i = j
        self.norm = "".join(parts)
        self._starts = starts
        self._ends = ends

    def raw(self, start: int, end: int) -> str:
        """The original substring behind norm[start:end]."""
        first, last = self.span(start, end)
        return self.original[first:last]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Where norm[start:end] is in the original: (start, end), end exclusive."""
        if start >= end:
            return (0, 0)
        return (self._starts[start], self._ends[end - 1])


@dataclass
class Found:
    value: str
    start: int
    end: int


def overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


# A value right after "不是"/"not" is the one being rejected ("不是明天，是后天").
_NEGATION_BEFORE = re.compile(
    r"(?:不是|不要|别|不|(?:\bnot|\bno|n't)(?:\s+(?:want|need|like|get))?|instead\s+of|"
    r"rather\s+than)\s*(?:the\s+|a\s+|an\s+)?$",
    re.IGNORECASE,
)


def negated(norm: str, start: int) -> bool:
    return bool(_NEGATION_BEFORE.search(norm[max(0, start - 14) : start]))


def pick_last(found: list[Found], norm: str) -> Found | None:
    """The last value not explicitly rejected: in a correction the new value comes last."""
    kept = [f for f in found if not negated(norm, f.start)]
    return kept[-1] if kept else None


CJK = re.compile(r"[\u4e00-\u9fff]")
QUESTION = re.compile(
    r"[?？]|吗|呢|什么|为什么|怎么|哪|几|\b(?:why|what|how|where|which|who)\b", re.IGNORECASE
)
POLITE_TAIL = re.compile(
    r"(?:[\s,.!?~…、。]*(?:谢谢你?|谢啦|谢了|多谢|麻烦(?:你|您)?了?|辛苦了?|哈|哦|噢|啊|呀|吧|啦|"
    r"(?<![a-z])(?:please|pls|thanks|thank\s+you|thx|cheers)))+[\s,.!?~…、。]*$|[\s,.!?~…、。:;]+$",
    re.IGNORECASE,
)
_LEAD_FILLER = re.compile(  # used with match(text, pos): no ^
    r"(?:[\s,.:;!?]|是|在|就是|应该是|不是|不对|请|麻烦|it'?s|it\s+is|is|at|to|the\s+address\s+is|"
    r"please|ok(?:ay)?|yes|yeah|sure|actually|sorry|oh|um|uh|well|no|not)+(?=\W|[\u4e00-\u9fff]|$)",
    re.IGNORECASE,
)


def clean_span(norm: str, start: int, end: int) -> tuple[int, int]:
    """Trim lead-in fillers and trailing punctuation/politeness off norm[start:end]."""
    m = _LEAD_FILLER.match(norm, start, end)
    if m:
        start = m.end()
    while start < end and norm[start].isspace():
        start += 1
    m = POLITE_TAIL.search(norm[start:end])
    if m:
        end = start + m.start()
    return start, end
