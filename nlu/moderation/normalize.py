"""Folding text for word matching, with a map back to the original characters.

Every character is folded on its own (`fold_char`): NFKC, case folding, combining diacritics and
invisible characters (zero-width, soft hyphen, bidi and variation selectors) dropped. Folding one
character at a time keeps the fold context-free, so a prefix of a stream folds to a prefix of the
whole text and offsets stay simple; it also makes "é" and "e" + U+0301 the same letter, "e".

Two forms are built from the folded characters:

* `normalize(text)`, the public one: separators *between* letters/digits are removed, so
  "F.u.c.k" -> "fuck" and "傻 逼" -> "傻逼"; with offsets back into `text`.
* `matching_form(text, needs)`, what the matcher scans: every run of separators becomes ONE
  space instead ("hell o" stays "hell o", "F.u.c.k" is "f u c k"). The space keeps the English
  word boundaries that `normalize` erases; the matcher puts the spaced spellings of its patterns
  ("f u c k", "ball gag") into its automaton instead, and looks for CJK patterns in this form
  with the spaces deleted ("傻 逼" -> "傻逼").
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The separators of the spec; their compatibility forms (full-width "，", ideographic space, "…")
# are added below by folding, and every Unicode whitespace character counts too.
SEPARATORS = " .-_*·,|/\\'\"~+"
# Same job, but NFKC leaves them alone: curly quotes (LLM output writes "don’t"), dashes,
# middle dots of CJK names ("马克・吐温").
_MORE_SEPARATORS = "‘’‚‛“”„‟′″‐‑‒–—―−・‧•∙"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Invisible in any text, so dropped too: variation selectors, combining grapheme joiner, tags.
_INVISIBLE_RANGES = ((0x034F, 0x034F), (0xFE00, 0xFE0F), (0xE0000, 0xE007F), (0xE0100, 0xE01EF))
# Combining diacritics (not all Mn: Japanese dakuten and Indic vowel signs are letters' parts).
_DIACRITIC_RANGES = (
    (0x0300, 0x036F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
)
CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul jamo
    (0x2E80, 0x2FDF),  # radicals
    (0x3005, 0x3007),
    (0x3021, 0x3029),
    (0x3031, 0x3035),
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # kana
    (0x3100, 0x312F),  # bopomofo ("他妈ㄉ")
    (0x3130, 0x318F),
    (0x31A0, 0x31BF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),  # Hangul syllables
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x1B000, 0x1B16F),
    (0x20000, 0x323AF),
)
# Code points whose folding is computed; above them only CJK extensions (fold to themselves),
# the compatibility ideographs, tags and variation selectors need a look.
_SCANNED = ((0, 0xD7FF), (0xE000, 0x1FFFF), (0x2F800, 0x2FA1F), (0xE0000, 0xE01EF))


@dataclass(frozen=True)
class _Tables:
    fold: dict[str, str]  # character -> its folding, where that is not itself
    fold_match: Callable[[re.Match[str]], str]
    separators: frozenset[str]
    soft: frozenset[str]  # separators and characters that fold to nothing
    soft_class: str  # regex class body of `soft`
    cjk_class: str
    text_needs: tuple[str, ...]  # non-separators whose folding is not a 1:1 str.casefold
    needs_all: re.Pattern[str]  # every character `normalize` maps through `fold`
    sep_any: re.Pattern[str]  # a run of separators
    sep_run: re.Pattern[str]  # a run of separators that is not a single " " already
    spaces: re.Pattern[str]
    sep_long: re.Pattern[str]  # (a run of two separators or more): one space in the matching form
    between: re.Pattern[str]  # separators between two letters/digits
    ascii_space: dict[int, str]  # str.translate table: ASCII separators -> " "
    word_char: re.Pattern[str]  # a letter/digit that takes part in word boundaries (not CJK)


def _in_ranges(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(low <= code <= high for low, high in ranges)


def _char_class(codes: Iterable[int]) -> str:
    """A regex class body for these code points, as ranges."""
    out: list[str] = []
    run: list[int] = []
    for code in sorted(set(codes)):
        if run and code == run[-1] + 1:
            run[-1] = code
            continue
        if run:
            out.append(_range(run[0], run[1]))
        run = [code, code]
    if run:
        out.append(_range(run[0], run[1]))
    return "".join(out)


def _range(low: int, high: int) -> str:
    def escape(code: int) -> str:
        return f"\\U{code:08x}" if code > 0xFFFF else f"\\u{code:04x}"

    return escape(low) if low == high else f"{escape(low)}-{escape(high)}"


def _needs_regex(codes: Iterable[int]) -> re.Pattern[str]:
    """A class of these characters, plus every character beyond the BMP.

    sre checks the BMP part of a class in one table look-up but walks the ranges above it one by
    one, for every character it tries: with the ~200 ranges of folding mathematical letters that
    made a 1 KB scan 30 times slower. Astral characters (emoji) are rare, so they all go through
    `fold_match`, which leaves those without a folding alone.
    """
    bmp = _char_class(code for code in codes if code <= 0xFFFF)
    return re.compile(f"[{bmp}\\U00010000-\\U0010ffff]")


def _dropped(char: str) -> bool:
    code = ord(char)
    return (
        char in ZERO_WIDTH
        or unicodedata.category(char) == "Cf"
        or _in_ranges(code, _INVISIBLE_RANGES)
        or _in_ranges(code, _DIACRITIC_RANGES)
    )


def _fold_once(char: str) -> str:
    if _dropped(char):
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold()
    kept = "".join(c for c in unicodedata.normalize("NFKD", folded) if not _dropped(c))
    # Recompose what NFKD took apart and nothing dropped (Hangul syllables, kana with dakuten).
    return unicodedata.normalize("NFC", kept)


@functools.cache
def _tables() -> _Tables:
    """Folding tables, built on first use (about 0.1 s) rather than at import."""
    first: dict[str, str] = {}
    for low, high in _SCANNED:
        for code in range(low, high + 1):
            char = chr(code)
            category = unicodedata.category(char)
            if category == "Cn" or (
                # Most characters fold to themselves; skip the slow path for them.
                category not in ("Cf", "Mn", "Me")
                and not unicodedata.decomposition(char)
                and char.casefold() == char
            ):
                continue
            folded = _fold_once(char)
            if folded != char:
                first[char] = folded
    fold: dict[str, str] = {}
    for char, folded in first.items():
        # Iterate to a fixpoint so that folding a folded string changes nothing.
        for _ in range(4):
            again = "".join(first.get(c, c) for c in folded)
            if again == folded:
                break
            folded = again
        fold[char] = folded

    base = set(SEPARATORS + _MORE_SEPARATORS)
    base |= {chr(c) for low, high in _SCANNED for c in range(low, high + 1) if chr(c).isspace()}
    separators = base | {c for c, f in fold.items() if f and all(x in base for x in f)}
    soft = separators | {c for c, f in fold.items() if not f}
    text_needs = tuple(
        c
        for c in sorted(fold)
        if c not in separators and (fold[c] != c.casefold() or len(c.casefold()) != 1)
    )
    every_needed = [ord(c) for c in fold if fold[c] != c.casefold() or len(c.casefold()) != 1]
    sep = _char_class(ord(c) for c in separators)
    sep_not_space = _char_class(ord(c) for c in separators if c != " ")
    cjk = "".join(_range(low, high) for low, high in CJK_RANGES)
    ascii_space = {ord(c): " " for c in separators if c.isascii() and c != " "}

    def fold_match(match: re.Match[str]) -> str:
        char = match.group()
        return fold.get(char, char)

    return _Tables(
        fold=fold,
        fold_match=fold_match,
        separators=frozenset(separators),
        soft=frozenset(soft),
        soft_class=_char_class(ord(c) for c in soft),
        cjk_class=cjk,
        text_needs=text_needs,
        needs_all=_needs_regex(every_needed),
        sep_any=re.compile(f"[{sep}]+"),
        # Starts with a class of rarer characters than " ": sre skips ahead on it, and plain
        # spaces between words (most separators in English) are left alone.
        sep_run=re.compile(f"[{sep_not_space}][{sep}]*"),
        spaces=re.compile("  +"),
        sep_long=re.compile(f"([{sep}]{{2,}})"),
        between=re.compile(rf"(?<=[^\W_])[{sep}]+(?=[^\W_])"),
        ascii_space=ascii_space,
        word_char=re.compile(rf"(?![{cjk}])[^\W_]"),
    )


def fold_char(char: str) -> str:
    """One character folded: NFKC, case folded, diacritics and invisible characters dropped."""
    return _tables().fold.get(char, char)


def is_cjk(char: str) -> bool:
    """A CJK character: patterns with one match anywhere, without word boundaries."""
    return _cjk_class().match(char) is not None


def has_cjk(text: str) -> bool:
    """Any CJK character in `text` (one compiled class: a matcher of 50,000 words asks this of
    every word, and testing each character against the ranges took half of its build)."""
    return _cjk_class().search(text) is not None


@functools.cache
def _cjk_class() -> re.Pattern[str]:
    return re.compile("[" + "".join(_range(low, high) for low, high in CJK_RANGES) + "]")


def is_separator(char: str) -> bool:
    return char in _tables().separators


def soft_class() -> str:
    """Regex class body: characters that never stand for a letter (separators, invisible ones)."""
    return _tables().soft_class


def soft_chars() -> frozenset[str]:
    """The characters of `soft_class`."""
    return _tables().soft


def word_char() -> re.Pattern[str]:
    """Matches a letter or digit that word boundaries apply to (anything alphanumeric but CJK)."""
    return _tables().word_char


class _Trace:
    """Replays the regex steps of a folding and keeps, for each output character, its source."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offsets = list(range(len(text)))

    def same_length(self, step: Callable[[str], str]) -> None:
        self.text = step(self.text)

    def sub(self, pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> None:
        events: list[tuple[int, int, int]] = []  # (start, end, new length) where lengths differ
        for match in pattern.finditer(self.text):
            start, end = match.span()
            size = len(repl if isinstance(repl, str) else repl(match))
            if size != end - start:
                events.append((start, end, size))
        self.text = pattern.sub(repl, self.text)
        if not events:
            return
        old = self.offsets
        offsets: list[int] = []
        pos = 0
        for start, end, size in events:
            offsets += old[pos:start]
            offsets += [old[start]] * size
            pos = end
        offsets += old[pos:]
        self.offsets = offsets


def normalize(text: str) -> tuple[str, list[int]]:
    """(normalised text, offsets) where offsets[i] is the index in `text` of the character that
    normalised character i came from; len(offsets) == len(normalised)."""
    tables = _tables()
    trace = _Trace(text)
    trace.sub(tables.needs_all, tables.fold_match)
    # Every character whose case folding is not one character went through the table above.
    trace.same_length(str.casefold)
    trace.sub(tables.between, "")
    return trace.text, trace.offsets


def normalize_word(word: str) -> str:
    """A pattern folded like `normalize`, with every separator inside it removed too."""
    return "".join(word_pieces(word))


def word_pieces(word: str) -> list[str]:
    """A pattern folded and cut at its separators: "Ball-Gag" -> ["ball", "gag"]."""
    tables = _tables()
    folded = tables.needs_all.sub(tables.fold_match, word).casefold()
    return [piece for piece in tables.sep_any.split(folded) if piece]


def needs_pattern(alphabet: Iterable[str]) -> re.Pattern[str]:
    """The characters `matching_form` must fold through the table for patterns over `alphabet`.

    Plain `str.casefold` does the rest. Left out: characters whose folding is a single character
    that is no letter or digit and in no pattern ("？" -> "?", "（" -> "("): such a character can
    neither be part of a match nor change a word boundary, and Chinese text is full of them, so
    folding them would cost a Python call each.
    """
    tables = _tables()
    letters = set(alphabet)
    kept: list[int] = []
    for char in tables.text_needs:
        folded = tables.fold[char]
        simple = len(folded) == 1 and len(char.casefold()) == 1
        if not simple or folded.isalnum() or folded in letters:
            kept.append(ord(char))
    return _needs_regex(kept)


def matching_form(text: str, needs: re.Pattern[str]) -> str:
    """The folded text the matcher scans (see the module docstring), without offsets."""
    tables = _tables()
    if text.isascii():
        # ASCII needs no NFKC, casefold is lower(), and it has no invisible or CJK characters.
        folded = text.lower().translate(tables.ascii_space)
        return tables.spaces.sub(" ", folded) if "  " in folded else folded
    folded = tables.sep_run.sub(" ", needs.sub(tables.fold_match, text).casefold())
    return tables.spaces.sub(" ", folded) if "  " in folded else folded


class FormMap:
    """Maps an index of `matching_form(text, needs)` back to `text`.

    Built from the few places where lengths differ (a run of separators folded to one space,
    a character folded to none or to several), looked up by bisection: only hits need it.
    """

    def __init__(self, text: str, needs: re.Pattern[str]) -> None:
        tables = _tables()
        folded_events: list[tuple[int, int, int]] = []
        if not text.isascii():
            for match in needs.finditer(text):
                size = len(tables.fold_match(match))
                if size != 1:
                    folded_events.append((match.start(), 1, size))
        # No separator folds to a non-separator or back, so without length changes the
        # separator runs of the folded text are those of `text`.
        folded = needs.sub(tables.fold_match, text) if folded_events else text
        # The matching form is " ".join(pieces): each run of two separators or more became one
        # space (a single separator became a space in place). Lengths come from C (split,
        # findall, accumulate): English text has a run after every sentence.
        parts = list(map(len, tables.sep_long.split(folded)))  # piece, run, piece, ..., piece
        pieces, runs = parts[0::2], parts[1::2]
        # Piece k starts after the k pieces and k spaces before it.
        before = itertools.accumulate(pieces[:-1], initial=0)
        self._piece_starts = list(map(operator.add, before, itertools.count()))
        self._folded_starts = list(itertools.accumulate(map(operator.add, pieces, runs), initial=0))
        self._pieces = pieces
        self._folded = _Stage(folded_events)

    def source(self, index: int) -> int:
        at = bisect.bisect_right(self._piece_starts, index) - 1
        # Inside piece `at`, or on the space that stands for the run after it (its first char).
        offset = min(index - self._piece_starts[at], self._pieces[at])
        return self._folded.source(self._folded_starts[at] + offset)


class _Stage:
    """One step that replaced some spans of its input: (input start, input length, output
    length) for each, in order."""

    def __init__(self, events: list[tuple[int, int, int]]) -> None:
        self._events = events
        self._starts: list[int] = []  # where each replacement starts in the output
        shift = 0
        for start, size, new_size in events:
            self._starts.append(start + shift)
            shift += new_size - size

    def source(self, index: int) -> int:
        at = bisect.bisect_right(self._starts, index) - 1
        if at < 0:
            return index
        out_start = self._starts[at]
        start, size, new_size = self._events[at]
        if index < out_start + new_size:
            return start
        return start + size + (index - out_start - new_size)
