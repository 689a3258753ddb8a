"""Sensitive-word matching: Aho-Corasick over the folded text, spans mapped back to the original.

The rule for separators and word boundaries (see `normalize` for the folding itself):

* A CJK pattern (one with any CJK character) matches anywhere, across separators: "傻 逼",
  "傻，逼" and "傻逼" are the same word. Chinese has no spaces between words to go by.
* Any other pattern is a word: in the ORIGINAL text, its first character must not follow a
  letter/digit and its last must not be followed by one (CJK characters count as boundaries:
  "你fuck" matches). Between its own characters the original may put separators in two ways
  only: where the entry has them itself, all of them or none ("ball gag" matches "ball gag",
  "ball-gag", "ball, gag", "ballgag"; but "t.i.t" does not match the "t it" of "didn't it"),
  or spelled out, ONE separator character between every two letters, for words of 3 letters or
  more ("f.u.c.k", "f u c k"; with 2, "a w-2 form" would spell "aw", which real lists hold).
  So "assassin", "class", "hell o" (for "hello") and "fu ck" do not match: the last is an
  evasion we let through, the others are the false positives a separator-blind matcher makes.
  A word inside a longer word does not match either: lists that mean "fucking" name it.

How: two automata over `matching_form` (folded, each run of separators one space). The English
one holds every allowed spelling of each word ("ball gag", "ballgag", "b a l l g a g") and its
matches are checked against the characters around them; the CJK one scans the same form without
its spaces. Only a hit is mapped back to the original text (`FormMap`), so the common case, no
hit, costs one folding and two scans.

Overlaps: the automata report every occurrence (standard semantics, overlapping), not
leftmost-longest. Leftmost-longest picks before the boundary check, so a rejected longer match
could hide a valid one ("ball gagging" would hide "ball"), and a long FLAG word could hide a
BLOCK word inside it. Instead every valid occurrence is kept, except one lying inside another of
the same or a stricter action (it would add nothing); masking covers the union of the spans.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import ahocorasick_rs

from nlu.moderation.normalize import (
    FormMap,
    has_cjk,
    is_separator,
    matching_form,
    needs_pattern,
    soft_class,
    word_char,
    word_pieces,
)


class Action(enum.StrEnum):
    BLOCK = "block"  # the whole message is refused
    MASK = "mask"  # the word is replaced by "*" (one per original character of its span)
    FLAG = "flag"  # left as is, reported for review


_RANK = {Action.FLAG: 0, Action.MASK: 1, Action.BLOCK: 2}
_MASKED = (Action.MASK, Action.BLOCK)
_MIN_SPELLED = 3
_ASCII_WORD = tuple(chr(byte).isalnum() for byte in range(128))


@dataclass(frozen=True)
class Entry:
    word: str
    action: Action
    category: str  # e.g. "abuse", "politics", "ads", "personal_data"


@dataclass(frozen=True)
class Hit:
    start: int  # span in the ORIGINAL text (not the normalised one), end exclusive
    end: int
    category: str
    action: Action


@dataclass(frozen=True)
class Verdict:
    text: str  # the input with every MASK and BLOCK hit masked, separators inside a span too
    hits: tuple[Hit, ...]

    @property
    def blocked(self) -> bool:
        return any(hit.action == Action.BLOCK for hit in self.hits)

    @property
    def flagged(self) -> bool:
        return any(hit.action == Action.FLAG for hit in self.hits)

    @property
    def changed(self) -> bool:
        # A masked span always holds a letter, never only "*" (a separator): masking changes it.
        return any(hit.action in _MASKED for hit in self.hits)


@dataclass
class _Pattern:
    word: str  # normalised
    action: Action
    category: str
    spellings: set[tuple[str, ...]] = field(default_factory=set)  # as cut by its separators


class _Variant(NamedTuple):
    """One automaton pattern: a spelling of a pattern in the matching form."""

    pattern: int
    check_start: bool  # a letter/digit must not come before it
    check_end: bool
    spelled: bool  # "f u c k": one separator character between letters, checked on the original


class Candidate(NamedTuple):
    """A valid occurrence in the original text, before overlaps are resolved."""

    start: int
    end: int
    rank: int
    length: int  # in the matching form: the longer wins a tie on the same span
    pattern: int
    settled: bool  # False: the next character could still make it invalid (streams only)


class Matcher:
    """Finds and masks the entries' words in text; immutable once built."""

    def __init__(self, entries: Iterable[Entry], *, version: int = 0) -> None:
        self.version = version
        by_word: dict[str, _Pattern] = {}
        for entry in entries:
            pieces = tuple(word_pieces(entry.word))
            word = "".join(pieces)
            if not word:
                continue
            pattern = by_word.get(word)
            if pattern is None:
                pattern = by_word[word] = _Pattern(word, Action(entry.action), entry.category)
            elif _RANK[Action(entry.action)] > _RANK[pattern.action]:
                pattern.action = Action(entry.action)  # the strictest wins, the first category
            pattern.spellings.add(pieces)
        self._patterns = list(by_word.values())
        self.max_length = max((len(p.word) for p in self._patterns), default=0)
        # Without words nothing is ever scanned: EMPTY, built at import, builds no tables.
        never = re.compile("(?!)")
        self._needs = (
            needs_pattern({c for p in self._patterns for c in p.word}) if by_word else never
        )
        self._word_char = word_char() if by_word else never
        self._soft_run = re.compile(f"[{soft_class()}]+") if by_word else never

        latin: dict[str, _Variant] = {}
        cjk: dict[str, _Variant] = {}
        for index, pattern in enumerate(self._patterns):
            if has_cjk(pattern.word):
                # No word boundaries; looked for in the matching form without its spaces.
                cjk[pattern.word] = _Variant(index, False, False, False)
                continue
            for string, variant in _variants(index, pattern):
                known = latin.get(string)
                # Two spellings can coincide ("f u c k" as written and spelled out): keep the
                # looser one.
                if known is None or (known.spelled and not variant.spelled):
                    latin[string] = variant
        self._latin_variants = list(latin.values())
        self._cjk_variants = list(cjk.values())
        # Measured (bench/moderation.py): a DFA scans the folded English text twice as fast as
        # the default NFA; for the CJK patterns, with their large alphabet, the NFA is faster.
        self._latin = _automaton(latin, ahocorasick_rs.Implementation.DFA)
        self._cjk = _automaton(cjk)

    def __len__(self) -> int:
        return len(self._patterns)

    def __repr__(self) -> str:
        return f"<Matcher version={self.version} patterns={len(self)}>"

    def find(self, text: str) -> list[Hit]:
        """Every hit in `text`, in order of start, spans in `text`."""
        return self.hits(self.candidates(text, final=True))

    def apply(self, text: str) -> Verdict:
        """`text` with its MASK and BLOCK words masked, and every hit."""
        hits = self.find(text)
        return Verdict(text=mask(text, hits), hits=tuple(hits))

    def candidates(self, text: str, *, final: bool) -> list[Candidate]:
        """Valid occurrences in `text`; unless `final`, `text` may go on (a stream's window)."""
        if not text or (self._latin is None and self._cjk is None):
            return []
        form = matching_form(text, self._needs)
        # The automata scan UTF-8 bytes: one encoding for both scans, and the CJK one needs
        # the form without spaces, which bytes.replace makes 5x faster than str.replace.
        raw = form.encode()
        found: list[tuple[int, int, _Variant]] = []  # byte spans in `raw`
        if self._latin is not None:
            for index, start, end in self._latin.find_matches_as_indexes(raw, overlapping=True):
                variant = self._latin_variants[index]
                if variant.check_start and start > 0 and self._word_before(raw, start):
                    continue
                if variant.check_end and end < len(raw) and self._word_at(raw, end):
                    continue
                found.append((start, end, variant))
        if self._cjk is not None and not text.isascii():
            joined = raw.replace(b" ", b"")
            cjk = self._cjk.find_matches_as_indexes(joined, overlapping=True)
            if cjk:
                # Byte i of `joined` is byte i + k of `raw`, k the spaces before it: the form
                # has single spaces only, so k is the number of the piece it is in.
                ends = list(itertools.accumulate(map(len, raw.split(b" "))))
                for index, start, end in cjk:
                    first = start + bisect.bisect_right(ends, start)
                    last = end - 1 + bisect.bisect_right(ends, end - 1)
                    found.append((first, last + 1, self._cjk_variants[index]))
        if not found:
            return []
        # Where the text could still change: a trailing run of separators may still join
        # the next word, so a word ending there waits for the next character.
        open_from = len(raw) + 1 if final else len(raw.rstrip(b" "))
        source = FormMap(text, self._needs).source
        if len(raw) == len(form):  # ASCII: bytes are characters
            chars: dict[int, int] | range = range(len(raw) + 1)
        else:
            chars = _char_offsets(raw, {i for start, end, _ in found for i in (start, end)})
        out: list[Candidate] = []
        for start, end, variant in found:
            settled = not (variant.check_end and end >= open_from)
            start, end = chars[start], chars[end]
            first, last = source(start), source(end - 1) + 1
            if variant.spelled and not self._spelled_out(text[first:last]):
                continue
            pattern = self._patterns[variant.pattern]
            rank = _RANK[pattern.action]
            out.append(Candidate(first, last, rank, end - start, variant.pattern, settled))
        return out

    def _word_before(self, raw: bytes, end: int) -> bool:
        """Whether the character that ends at byte `end` is a letter/digit (not CJK)."""
        byte = raw[end - 1]
        if byte < 0x80:
            return _ASCII_WORD[byte]
        start = end - 1
        while raw[start] & 0xC0 == 0x80:  # back over UTF-8 continuation bytes
            start -= 1
        return self._word_char.match(raw[start:end].decode()) is not None

    def _word_at(self, raw: bytes, start: int) -> bool:
        """Whether the character that starts at byte `start` is a letter/digit (not CJK)."""
        byte = raw[start]
        if byte < 0x80:
            return _ASCII_WORD[byte]
        end = start + 1
        while end < len(raw) and raw[end] & 0xC0 == 0x80:
            end += 1
        return self._word_char.match(raw[start:end].decode()) is not None

    def hits(self, candidates: Iterable[Candidate], *, covered: Sequence[Hit] = ()) -> list[Hit]:
        """Hits from candidates: each one inside another of the same or a stricter action is
        dropped. `covered`: hits already taken that start before every candidate."""
        # reach[r]: the furthest end of a span seen so far with an action of rank r or stricter;
        # the candidates come by start, so a span ending at or before it is inside one.
        reach = [-1, -1, -1]
        for hit in covered:
            for rank in range(_RANK[hit.action] + 1):
                reach[rank] = max(reach[rank], hit.end)
        out: list[Hit] = []
        order = sorted(candidates, key=lambda c: (c.start, -c.end, -c.rank, -c.length, c.pattern))
        for candidate in order:
            if reach[candidate.rank] < candidate.end:
                pattern = self._patterns[candidate.pattern]
                out.append(Hit(candidate.start, candidate.end, pattern.category, pattern.action))
            for rank in range(candidate.rank + 1):
                reach[rank] = max(reach[rank], candidate.end)
        return out

    def _spelled_out(self, span: str) -> bool:
        """Each gap between two letters of the span is exactly one separator character."""
        for run in self._soft_run.findall(span):
            if sum(1 for char in run if is_separator(char)) != 1:
                return False
        return True


def _automaton(
    strings: dict[str, _Variant], implementation: ahocorasick_rs.Implementation | None = None
) -> ahocorasick_rs.BytesAhoCorasick | None:
    if not strings:
        return None
    # Standard semantics: with overlapping=True it reports every occurrence (see the docstring).
    return ahocorasick_rs.BytesAhoCorasick(
        [string.encode() for string in strings],
        matchkind=ahocorasick_rs.MatchKind.Standard,
        implementation=implementation,
    )


def _char_offsets(raw: bytes, offsets: Iterable[int]) -> dict[int, int]:
    """Character offsets of these byte offsets of UTF-8 `raw` (all on character starts)."""
    out: dict[int, int] = {}
    byte = char = 0
    for offset in sorted(offsets):
        char += len(raw[byte:offset].decode())
        out[offset] = char
        byte = offset
    return out


def _variants(index: int, pattern: _Pattern) -> Iterable[tuple[str, _Variant]]:
    """A word's spellings in the matching form, each with what to check around it."""
    word = pattern.word
    check_start = word_char().match(word[0]) is not None
    check_end = word_char().match(word[-1]) is not None
    yield word, _Variant(index, check_start, check_end, False)
    for pieces in pattern.spellings:
        # As written, or joined; not a mix: "t.i.t" must not become "t it" ("didn't it").
        if len(pieces) > 1 and any(len(piece) > 1 for piece in pieces):
            yield " ".join(pieces), _Variant(index, check_start, check_end, False)
    # Spelled out needs 3 letters: with 2, "a w-2 form" and "how many a's" would spell "aw"
    # and "as", which real lists hold.
    if len(word) >= _MIN_SPELLED:
        yield " ".join(word), _Variant(index, check_start, check_end, True)


def mask(text: str, hits: Iterable[Hit]) -> str:
    """`text` with the spans of MASK and BLOCK hits replaced by one "*" per character."""
    spans = sorted((hit.start, hit.end) for hit in hits if hit.action in _MASKED)
    if not spans:
        return text
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        start = max(start, pos)
        if end <= start:
            continue
        pieces.append(text[pos:start])
        pieces.append("*" * (end - start))
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


EMPTY = Matcher([])
