"""Content safety in a turn: the user's text on the way in, the model's reply on the way out.

The words and their actions are staff's (nlu.moderation, the admin's Sensitive words); this
module applies them to a conversation:

* input: a `block` word refuses the message (ContentBlocked, `content_blocked`) before anything is
  stored or sent to a model; `mask` words are masked in what is stored and what the model sees;
  `flag` words pass, and the message is marked `flagged` for staff (the admin's filter);
* output: every piece of the model's stream goes through a StreamFilter, so a word the model spells
  out one character at a time is masked before any of it reaches a socket, and the stored reply is
  what the sockets got (`block` words in a reply are masked: the reply is already under way).

Hits are logged, and recorded on the message (`Message.moderation`), with their category and
action only, never with the text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from nlu.exceptions import ContentBlocked
from nlu.moderation.matcher import Action, Hit, Matcher
from nlu.moderation.registry import current_matcher
from nlu.moderation.stream import StreamFilter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moderated:
    """A text after moderation, and what to record on its message."""

    text: str
    record: list[dict[str, object]] = field(default_factory=list)  # Message.moderation

    @property
    def flagged(self) -> bool:
        return any(entry["action"] == Action.FLAG for entry in self.record)


def moderate_input(text: str, *, matcher: Matcher | None = None) -> Moderated:
    """The user's text with `mask` words masked, and the hits to record.

    Raises:
        ContentBlocked: the text holds a `block` word.
    """
    verdict = (matcher or current_matcher()).apply(text)
    if not verdict.hits:
        return Moderated(text)
    log_hits(verdict.hits, where="input")
    if verdict.blocked:
        categories = sorted({h.category for h in verdict.hits if h.action == Action.BLOCK})
        raise ContentBlocked(
            "The message contains words that are not allowed here",
            extra={"categories": categories},
        )
    return Moderated(verdict.text, summary(verdict.hits))


class ReplyFilter:
    """The model's stream, masked as it goes; `feed` each piece, `finish` at the end."""

    def __init__(self, matcher: Matcher) -> None:
        self._filter = StreamFilter(matcher) if len(matcher) else None

    def feed(self, piece: str) -> str:
        return self._filter.feed(piece) if self._filter is not None else piece

    def finish(self) -> str:
        """What was held back, and a log line for the reply's hits."""
        if self._filter is None:
            return ""
        rest = self._filter.finish()
        if self._filter.hits:
            log_hits(self._filter.hits, where="reply")
        return rest

    @property
    def record(self) -> list[dict[str, object]]:
        """The reply's hits so far, for Message.moderation."""
        return summary(self._filter.hits) if self._filter is not None else []


def summary(hits: Iterable[Hit]) -> list[dict[str, object]]:
    """[{"category", "action", "count"}] per (category, action): what is stored and logged."""
    counts = Counter((hit.category, str(hit.action)) for hit in hits)
    return [
        {"category": category, "action": action, "count": count}
        for (category, action), count in sorted(counts.items())
    ]


def log_hits(hits: Iterable[Hit], *, where: str) -> None:
    """One log line per (category, action), with counts and never the text."""
    for entry in summary(hits):
        logger.warning("sensitive word", extra={"where": where, **entry})
