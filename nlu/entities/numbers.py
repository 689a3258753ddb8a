"""Numbers in digits, Chinese numerals and English words, and the quantity a message asks for."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .text import CJK, Found, Text, negated, overlaps

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUMERAL = r"[零〇一二两俩三四五六七八九十百千]+"

_EN_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_EN_ONES += " fifteen sixteen seventeen eighteen nineteen"
EN_WORDS = {w: i for i, w in enumerate(_EN_ONES.split())}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
_EN_TENS |= {"seventy": 70, "eighty": 80, "ninety": 90}
_EN_SPECIAL = {"a couple of": 2, "a couple": 2, "couple of": 2, "a pair of": 2, "a dozen": 12}
_EN_SPECIAL |= {"dozen": 12, "a hundred": 100, "one hundred": 100}
EN_NUMBER = (
    r"\b(?:"
    + "|".join(re.escape(k) for k in sorted(_EN_SPECIAL, key=len, reverse=True))
    + "|(?:"
    + "|".join(_EN_TENS)
    + r")(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine)\b)?"
    + "|"
    + "|".join(sorted(EN_WORDS, key=len, reverse=True))
    + r")\b"
)


def parse_chinese_number(s: str) -> int | None:
    """十二 → 12, 两百零五 → 205, 三 → 3; None for anything that is not a plain numeral."""
    if not s or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in s):
        return None
    if all(ch in _CN_DIGITS for ch in s):  # 一二三 read digit by digit is rare: only one digit
        return _CN_DIGITS[s] if len(s) == 1 else None
    total, digit = 0, None
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        else:
            total += (1 if digit is None else digit) * _CN_UNITS[ch]
            digit = None
    return total + (digit or 0)


def parse_number(s: str) -> int | None:
    """An integer from digits, a Chinese numeral or English words; None if it is none of these."""
    s = unicodedata.normalize("NFKC", s).strip().lower()
    if s.isdigit():
        return int(s)
    if s in _EN_SPECIAL:
        return _EN_SPECIAL[s]
    if s in EN_WORDS:
        return EN_WORDS[s]
    parts = re.split(r"[\s-]+", s)
    if parts[0] in _EN_TENS:
        rest = EN_WORDS.get(parts[1], 99) if len(parts) == 2 else 0
        return _EN_TENS[parts[0]] + rest if rest < 10 else None
    return parse_chinese_number(s)


# --------------------------------------------------------------------------------------------
# Quantities

_ZH_UNIT = r"(?:[大小中]?(?:份|个|個|盒|套|杯|位|碗|件|只|瓶|袋|张|串|客|人份|人))"
_EN_UNIT = (
    r"(?:sets?|portions?|servings?|meals?|boxes|box|orders?|packs?|combos?|pieces?|cups?|"
    r"bowls?|bottles?|plates?|items?|people|persons|guests|adults|"
    r"of\s+(?:them|those|these|it|that|the|each))\b"
)
_UNIT_AFTER = re.compile(
    rf"^\s*(?:{_ZH_UNIT}|[x×*]\b|[x×*](?=\s|$)|(?:[a-z'’-]+\s+){{0,3}}?{_EN_UNIT})",
    re.IGNORECASE,
)
_TIMES_BEFORE = re.compile(r"(?:(?<![a-z])[x×]|\*)\s*$", re.IGNORECASE)
_MARKER_BEFORE = re.compile(
    r"(?:改成|改为|换成|改到|数量(?:是|为|:|改成)?|"
    r"\b(?:make|change|set)\s+(?:it|that|them|the\s+quantity|quantity)(?:\s+to)?|"
    r"\bchange\s+to|\bquantity(?:\s+is|\s+of|\s*:|\s+to)?)\s*$",
    re.IGNORECASE,
)
# Digits followed by these are times, dates, money or places, never a count.
_NOT_QUANTITY_AFTER = re.compile(
    r"^\s*(?:点|點|:\d|号|號|楼|樓|栋|棟|层|層|室|单元|路|街|弄|巷|月|日|天|年|周|岁|元|块|%|分|秒|"
    r"小时|折|次|(?:st|nd|rd|th|am|pm|h|streets?|roads?|avenues?|ave|floors?|storeys?|"
    r"minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|"
    r"yuan|rmb|dollars?|usd|kg|km|percent)\b)",
    re.IGNORECASE,
)
_NOT_QUANTITY_BEFORE = re.compile(
    r"(?:第|周|期|拜|唯|统|万|之|#|no\.\s*|number\s*|room\s*|"
    r"\b(?:this|that|the|which|any|every|no|each|some|another)\s+)$",
    re.IGNORECASE,
)
# After a Chinese numeral only these may follow, or it is part of a word (一下, 一起, 三明治).
_ZH_NUMERAL_OK_AFTER = re.compile(
    rf"^(?:$|[\s,.!?;:~、，。！？]|{_ZH_UNIT}|就|吧|了|谢|啊|呀|哦|好|行|嘛|即可)"
)
_NUMBER_TOKEN = re.compile(
    rf"(?:(?<=[x×*])|(?<![A-Za-z0-9.]))\d+(?![\d.]\d)(?=[^\d]|$)|{CN_NUMERAL}|{EN_NUMBER}",
    re.IGNORECASE,
)
_ARTICLE_UNIT = re.compile(rf"\b(a|an|one)\s+(?:(?:[a-z'’-]+\s+){{0,3}}?){_EN_UNIT}", re.IGNORECASE)
_FILLER_WORDS = re.compile(
    r"^(?:[\s,.!?;:~、，。！？]|不对|不是|不|对|是|嗯|哦|啊|呀|吧|了|就|只|要|我要|那|那就|还是|"
    r"其实|改成|改为|换成|好的?|谢谢|麻烦|no|nope|yes|yeah|ok(?:ay)?|actually|sorry|oh|just|"
    r"only|please|i\s+want|i'?d\s+like|let'?s\s+do|how\s+about|then|wait|hmm|um|uh|"
    r"make\s+(?:it|that|them)|change\s+(?:it|that)\s+to|thanks|thank\s+you)*$",
    re.IGNORECASE,
)


@dataclass
class _NumberCandidate:
    value: int
    start: int
    end: int
    marked: bool  # has a unit or a "make it" / "改成" marker


def _number_candidates(norm: str, taken: list[tuple[int, int]]) -> list[_NumberCandidate]:
    found: list[_NumberCandidate] = []
    for m in _NUMBER_TOKEN.finditer(norm):
        token, start, end = m.group(), m.start(), m.end()
        if overlaps(start, end, taken):
            continue
        value = parse_number(token)
        if value is None:
            continue
        after, before = norm[end:], norm[max(0, start - 24) : start]
        if _NOT_QUANTITY_AFTER.match(after) or _NOT_QUANTITY_BEFORE.search(before):
            continue
        if CJK.match(token) and not _ZH_NUMERAL_OK_AFTER.match(after):
            continue
        if re.fullmatch(r"[A-Za-z]", norm[end : end + 1] or " ") and token.isdigit():
            if not re.match(r"[x×]\b", after, re.IGNORECASE):
                continue  # "3b", "5F": part of a code or a floor
        marked = bool(
            _UNIT_AFTER.match(after)
            or _TIMES_BEFORE.search(before)
            or _MARKER_BEFORE.search(before)
        )
        found.append(_NumberCandidate(value, start, end, marked))
    return found


def find_quantity(
    t: Text, taken: list[tuple[int, int]], *, awaited: bool, bare_ok: bool
) -> Found | None:
    """A count, read conservatively; see the package docstring for why."""
    norm = t.norm
    candidates = [c for c in _number_candidates(norm, taken) if not negated(norm, c.start)]
    marked = [c for c in candidates if c.marked]
    chosen: _NumberCandidate | None = None
    if len({c.value for c in marked}) == 1:
        chosen = marked[-1]
    elif len({c.value for c in marked}) > 1:
        chosen = marked[-1] if _MARKER_BEFORE.search(norm[: marked[-1].start]) else None
    elif awaited or bare_ok:
        if len({c.value for c in candidates}) == 1:
            c = candidates[-1]
            rest = norm[: c.start] + " " + norm[c.end :]
            rest = "".join(ch for i, ch in enumerate(rest) if not overlaps(i, i + 1, taken))
            # Unasked, a bare number counts only when nothing else is said ("no, three").
            if awaited or _FILLER_WORDS.match(rest.strip()):
                chosen = c
        if chosen is None and awaited and not candidates:
            m = _ARTICLE_UNIT.search(norm)  # "a classic set" when asked how many
            if m and not overlaps(m.start(1), m.end(1), taken):
                return Found("1", m.start(1), m.end(1))
    if chosen is None:
        return None
    return Found(str(chosen.value), chosen.start, chosen.end)
