"""The matcher on a reply that arrives in chunks: emit what is decided, hold back the rest.

What is held back is the tail that could still be part of a hit: the last `max_length - 1`
letters (characters other than separators and invisible ones) with the separators among and
after them, plus a complete English word at the very end whose word boundary is not known yet:
"fuck" may still become "fucking", a different word, so it waits for the next character (for
that word only, `max_length` letters instead of `max_length - 1`). Everything before the tail is
final: every hit that touches it is known and can no longer change, so it is emitted, masked.
An emoji counts as no letter here, which can only make the tail longer.

Each feed rescans only a window: the held tail, the new chunk, and one emitted character of
context (plus a space standing for the separators after it), never the whole reply.
"""

from __future__ import annotations

import bisect
import re

from nlu.moderation.matcher import Action, Candidate, Hit, Matcher
from nlu.moderation.normalize import is_separator, soft_chars, soft_class

_MASKED = (Action.MASK, Action.BLOCK)


class StreamFilter:
    """Filters one reply: `feed` each chunk, then `finish`; the outputs joined equal
    `matcher.apply(whole reply).text`, and `hits` ends up equal to `matcher.find(whole reply)`."""

    def __init__(self, matcher: Matcher) -> None:
        self.hits: list[Hit] = []  # every hit so far, spans in the whole stream's coordinates
        self._matcher = matcher
        self._pending = ""  # received, not emitted yet
        self._context = ""  # stands for the emitted text just before `_pending`
        self._emitted = 0  # characters emitted so far: the stream index of `_pending[0]`
        self._masked_until = 0  # a taken hit may run past the emitted text: mask up to here
        self._open: list[Hit] = []  # taken hits that end after the emitted text
        # Stream indices of the pending letters (characters that are no separator or invisible
        # one; an emoji counts as none, which only holds back a little more).
        self._letters: list[int] = []
        self._hold = max(matcher.max_length - 1, 0)
        self._soft_run = re.compile(f"[{soft_class()}]*")
        self._soft = soft_chars()
        self._noop = not len(matcher)

    def feed(self, chunk: str) -> str:
        """The text that is safe to emit now (may be "")."""
        if not chunk:
            return ""
        if self._noop:
            self._emitted += len(chunk)
            return chunk
        position = self._emitted + len(self._pending)
        self._pending += chunk
        soft = self._soft
        letters = self._letters
        for offset, char in enumerate(chunk):
            if char not in soft and char <= "\uffff":
                letters.append(position + offset)
        # Hold back the last `hold` letters and what comes after them; with fewer, from the
        # first one; with none, the trailing separators.
        hold = self._hold
        if not letters:
            cut = self._emitted
        elif not hold:
            cut = letters[-1] + 1
        else:
            cut = letters[-hold] if len(letters) >= hold else letters[0]
        candidates = self._window_candidates(final=False)
        for candidate in candidates:
            if not candidate.settled:
                cut = min(cut, candidate.start)
        return self._emit(cut - self._emitted, candidates)

    def finish(self) -> str:
        """The rest, at the end of the stream."""
        out = self._emit(len(self._pending), self._window_candidates(final=True))
        self._context = ""
        return out

    def _window_candidates(self, *, final: bool) -> list[Candidate]:
        """Candidates of the window that start in the pending text, in stream coordinates."""
        window = self._context + self._pending
        found = self._matcher.candidates(window, final=final)
        if not found:
            return found
        shift = self._emitted - len(self._context)
        return [
            c._replace(start=c.start + shift, end=c.end + shift)
            for c in found
            if c.start >= len(self._context)
        ]

    def _emit(self, cut: int, candidates: list[Candidate]) -> str:
        """Take the hits that start before `cut` (pending coordinates) and emit up to it."""
        if cut == 0:
            return ""
        end = self._emitted + cut
        piece = out = self._pending[:cut]
        if candidates or self._masked_until > self._emitted:
            taken = self._matcher.hits(
                (c for c in candidates if c.settled and c.start < end), covered=self._open
            )
            spans = [(self._emitted, self._masked_until)]
            spans += [(hit.start, hit.end) for hit in taken if hit.action in _MASKED]
            out = _mask(piece, self._emitted, spans)
            self._masked_until = max(end for _, end in spans)
            self.hits.extend(taken)
            self._open = [hit for hit in self._open + taken if hit.end > end]
        self._remember(piece)
        self._pending = self._pending[cut:]
        self._emitted = end
        del self._letters[: bisect.bisect_left(self._letters, end)]
        return out

    def _remember(self, piece: str) -> None:
        """Keep, of the text before the pending one, what the matching form needs of it: its
        last letter, and a space if separators follow it (they fold to one space)."""
        if piece[-1] not in self._soft:
            self._context = piece[-1]
            return
        reversed_before = (self._context + piece)[::-1]
        run = self._soft_run.match(reversed_before)
        assert run is not None
        letter = reversed_before[run.end() : run.end() + 1]
        self._context = letter + (" " if any(is_separator(c) for c in run.group()) else "")


def _mask(piece: str, offset: int, spans: list[tuple[int, int]]) -> str:
    """`piece` (starting at stream index `offset`) with the parts inside `spans` masked."""
    chars = None
    for start, end in spans:
        start, end = max(start - offset, 0), min(end - offset, len(piece))
        if start < end:
            chars = chars if chars is not None else list(piece)
            chars[start:end] = "*" * (end - start)
    return piece if chars is None else "".join(chars)
