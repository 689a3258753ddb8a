"""One normal form for a user's text, used by training, serving and the cache alike."""

from __future__ import annotations

import re
import unicodedata

# Longer texts are cut: intents show in the first few sentences, and a 100 KB message must cost
# no more to classify than a short one.
MAX_CHARS = 500

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits), case-folded, control characters dropped, spaces
    collapsed, cut to MAX_CHARS. May return "" (nothing but spaces, controls or nothing)."""
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 4])
    text = _CONTROL.sub("", text).casefold()
    return _SPACES.sub(" ", text).strip()[:MAX_CHARS]
