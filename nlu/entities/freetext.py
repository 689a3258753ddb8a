"""Free-text slots (an order number, a note): the awaited answer minus its lead-in."""

from __future__ import annotations

import re

from .answers import UNSURE, is_cancel, yes_no
from .text import QUESTION, Found, Text, clean_span

_TEXT_LEAD = re.compile(
    r"(?:[\s,.:;#]|不对|不是|就是|我的|订单号码?|订单编号|订单|单号|编号|手机号码?|手机|电话号码?|电话|"
    r"号码|是|为|(?:no|actually|sorry|it'?s|it\s+is|my|the|order|number|ref(?:erence)?|phone|"
    r"is|was)(?![a-z0-9]))+",
    re.IGNORECASE,
)


def find_text(t: Text) -> Found | None:
    norm = t.norm
    start, end = 0, len(norm)
    m = _TEXT_LEAD.match(norm)
    if m and m.end() < end:
        start = m.end()
    start, end = clean_span(norm, start, end)
    text = norm[start:end]
    whole = norm.strip(" ,.!?~:;，。！？")
    if not text or is_cancel(whole):
        return None
    if not re.search(r"\d", whole) and (
        yes_no(whole) is not None or UNSURE.match(whole.lower()) or QUESTION.search(whole)
    ):
        return None  # "好的", "不知道", "what?" are not an order number
    return Found(text, start, end)
