"""Slot values found in a user's message, in Chinese and English: rules, not a model.

The dialogue engine asks for one slot at a time but users answer several at once ("两份经典套餐，
送到世纪大道100号"), correct earlier answers ("不对，手机号是139…", "actually make it two") or
answer something else entirely. Everything here is a pure function of the text, the slot specs,
the slot being asked for and today's date, so it is cheap to test and safe to run anywhere.

Order matters: e-mails, phones, dates and times are found first, anywhere in the text, and their
spans are "consumed" so that digits inside them are never read as a quantity. Addresses come next
(their digits are consumed too), then choices outside the address, then numbers. When in doubt a
slot is left empty: asking again costs one turn, a wrong quantity costs a wrong order.

Offsets: the text is NFKC-normalised (full-width digits and letters from Chinese IMEs become
ASCII) for matching, and every span is mapped back to the original text, so `Entity.raw` is always
an exact substring of what the caller passed in and can be masked there.
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from chatsite.logredact import CN_MOBILE, EMAIL

if TYPE_CHECKING:
    from nlu.models import SlotDefinition

__all__ = ["Entity", "SlotSpec", "extract", "is_cancel", "yes_no"]


@dataclass(frozen=True)
class SlotSpec:
    """What extract() needs to know about a slot: a plain value, so no database is involved."""

    name: str
    slot_type: str  # phone / email / address / number / date / text / choice
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, en label, zh label)

    @classmethod
    def from_definition(cls, slot: SlotDefinition | Any) -> SlotSpec:
        """The spec of a SlotDefinition (or anything with name, slot_type and choices)."""
        choices = tuple(
            (str(c.get("value", "")), str(c.get("en", "")), str(c.get("zh", "")))
            for c in (getattr(slot, "choices", None) or [])
            if isinstance(c, dict) and c.get("value")
        )
        return cls(name=str(slot.name), slot_type=str(slot.slot_type), choices=choices)


@dataclass(frozen=True)
class Entity:
    """A slot value and the exact substring of the caller's text it was read from."""

    slot: str
    value: str
    raw: str


# --------------------------------------------------------------------------------------------
# Normalisation with offsets back into the original text


class _Text:
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
        if start >= end:
            return ""
        return self.original[self._starts[start] : self._ends[end - 1]]


@dataclass
class _Found:
    value: str
    start: int
    end: int


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


# A value right after "不是"/"not" is the one being rejected ("不是明天，是后天").
_NEGATION_BEFORE = re.compile(
    r"(?:不是|不要|别|不|(?:\bnot|\bno|n't)(?:\s+(?:want|need|like|get))?|instead\s+of|"
    r"rather\s+than)\s*(?:the\s+|a\s+|an\s+)?$",
    re.IGNORECASE,
)


def _negated(norm: str, start: int) -> bool:
    return bool(_NEGATION_BEFORE.search(norm[max(0, start - 14) : start]))


def _pick_last(found: list[_Found], norm: str) -> _Found | None:
    """The last value not explicitly rejected: in a correction the new value comes last."""
    kept = [f for f in found if not _negated(norm, f.start)]
    return kept[-1] if kept else None


# --------------------------------------------------------------------------------------------
# Numbers (words and numerals), shared by quantities, dates and relative days

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = r"[零〇一二两俩三四五六七八九十百千]+"

_EN_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_EN_ONES += " fifteen sixteen seventeen eighteen nineteen"
_EN_WORDS = {w: i for i, w in enumerate(_EN_ONES.split())}
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
_EN_TENS |= {"seventy": 70, "eighty": 80, "ninety": 90}
_EN_SPECIAL = {"a couple of": 2, "a couple": 2, "couple of": 2, "a pair of": 2, "a dozen": 12}
_EN_SPECIAL |= {"dozen": 12, "a hundred": 100, "one hundred": 100}
_EN_NUMBER = (
    r"\b(?:"
    + "|".join(re.escape(k) for k in sorted(_EN_SPECIAL, key=len, reverse=True))
    + "|(?:"
    + "|".join(_EN_TENS)
    + r")(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine)\b)?"
    + "|"
    + "|".join(sorted(_EN_WORDS, key=len, reverse=True))
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
    if s in _EN_WORDS:
        return _EN_WORDS[s]
    parts = re.split(r"[\s-]+", s)
    if parts[0] in _EN_TENS:
        rest = _EN_WORDS.get(parts[1], 99) if len(parts) == 2 else 0
        return _EN_TENS[parts[0]] + rest if rest < 10 else None
    return parse_chinese_number(s)


# --------------------------------------------------------------------------------------------
# E-mail and phone

_PHONE_LEAD = re.compile(
    r"(?:手机号码?|手机|电话号码?|电话|联系方式|号码|"
    r"\b(?:phone|mobile|cell|telephone|tel)(?:\s+(?:number|no\.?))?|\bnumber)"
    r"\s*(?:是|为|:|改成|改为|换成|is|should\s+be|to|=)?\s*$",
    re.IGNORECASE,
)
# A clause that only names the phone ("手机号是", "my number is") once the number is taken out.
_PHONE_NAME_ONLY = re.compile(
    r"^(?:(?:我的|新的?|my|the|new|our)\s*)?" + _PHONE_LEAD.pattern, re.IGNORECASE
)
_INTERNATIONAL = re.compile(r"(?<![\d+])(?:\+|00)\s?[1-9][\d\s().\-]{5,}\d(?!\d)")
# Landlines with an area code (021-12345678), taken only where a phone is expected.
_CN_LANDLINE = re.compile(r"(?<![\d+])0\d{2,3}[\s\-]?\d{7,8}(?!\d)")
_ANY_NUMBER = re.compile(r"(?<![\d+])\(?\d[\d\s().\-]{5,}\d(?!\d)")


def _find_emails(t: _Text) -> list[_Found]:
    return [_Found(m.group().lower(), m.start(), m.end()) for m in EMAIL.finditer(t.norm)]


def _find_phones(t: _Text, taken: list[tuple[int, int]], *, expected: bool) -> list[_Found]:
    """Phone numbers in order of position; local formats only when a phone is `expected`."""
    found: list[_Found] = []

    def add(value: str, start: int, end: int) -> None:
        if not _overlaps(start, end, taken + [(f.start, f.end) for f in found]):
            found.append(_Found(value, start, end))

    norm = t.norm
    for m in CN_MOBILE.finditer(norm):
        add(re.sub(r"\D", "", m.group())[-11:], m.start(), m.end())
    for m in _INTERNATIONAL.finditer(norm):
        digits = re.sub(r"\D", "", m.group())
        if m.group().startswith("00"):
            digits = digits[2:]
        if 8 <= len(digits) <= 15:
            add("+" + digits, m.start(), m.end())
    for m in _CN_LANDLINE.finditer(norm):
        if expected or _PHONE_LEAD.search(norm[: m.start()]):
            add(re.sub(r"\D", "", m.group()), m.start(), m.end())
    if expected:
        for m in _ANY_NUMBER.finditer(norm):
            digits = re.sub(r"\D", "", m.group())
            if 7 <= len(digits) <= 15:
                add(digits, m.start(), m.end())
    return sorted(found, key=lambda f: f.start)


# --------------------------------------------------------------------------------------------
# Dates and times

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NAME = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAYS_EN = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS_ZH |= {str(i + 1): i for i in range(7)}
_RELATIVE_DAYS = {
    "大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明早": 1, "明晚": 1, "今天": 0, "今日": 0,
    "今晚": 0, "day after tomorrow": 2, "tomorrow": 1, "today": 0, "tonight": 0,
}  # fmt: skip
_YMD = r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"
_MD_ZH = rf"(?<![\d年])(\d{{1,2}}|{_CN_NUMERAL})\s*月\s*(\d{{1,2}}|{_CN_NUMERAL})\s*[日号]"
_ORDINAL = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_RELATIVE = (
    r"大后天|后天|明天|明日|明早|明晚|今天|今日|今晚|"
    r"\b(?:the\s+)?day\s+after\s+tomorrow\b|\btomorrow\b|\btoday\b|\btonight\b"
)
_IN_DAYS = rf"(\d{{1,2}}|{_CN_NUMERAL})\s*天(?:以后|之后|后)|\bin\s+(\d{{1,2}}|[a-z]+)\s+days?\b"
_WD_ZH = r"(下下|下个?|这个?|本|上个?)?\s*(?:周|星期|礼拜)([一二三四五六日天1-7])"
_WD_EN = r"\b(?:(next|this|coming|last)\s+)?(" + "|".join(_WEEKDAYS_EN) + r")\b"
_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ymd", re.compile(_YMD)),
    ("md_zh", re.compile(_MD_ZH)),
    ("md_slash", re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")),
    ("m_d", re.compile(rf"\b{_MONTH_NAME}\s+(\d{{1,2}}){_ORDINAL}\b{_YEAR}", re.I)),
    ("d_m", re.compile(rf"\b(\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?{_MONTH_NAME}\b{_YEAR}", re.I)),
    ("rel", re.compile(_RELATIVE, re.I)),
    ("in_days", re.compile(_IN_DAYS, re.I)),
    ("wd_zh", re.compile(_WD_ZH)),
    ("wd_en", re.compile(_WD_EN, re.I)),
]
# Times are never quantities ("3点", "7:30", "6 pm").
_TIME = re.compile(
    rf"(?:\d{{1,2}}|{_CN_NUMERAL})\s*[点點](?:半|\d{{1,2}}分?|{_CN_NUMERAL}分?)?|"
    r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)\b",
    re.IGNORECASE,
)


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _month_day(
    month: int, day: int, year: int | None, today: datetime.date
) -> datetime.date | None:
    """A date without a year is the next one on or after today: orders are for the future."""
    if year is not None:
        return _safe_date(year, month, day)
    found = _safe_date(today.year, month, day)
    if found is not None and found < today:
        found = _safe_date(today.year + 1, month, day)
    return found


def _weekday(prefix: str, weekday: int, today: datetime.date) -> datetime.date:
    """下周一 / next Monday: that day of next calendar week; 周一 / this Monday: the next one."""
    monday = today - datetime.timedelta(days=today.weekday())
    prefix = prefix.lower()
    if prefix.startswith("下下"):
        return monday + datetime.timedelta(days=14 + weekday)
    if prefix.startswith("下") or prefix == "next":
        return monday + datetime.timedelta(days=7 + weekday)
    if prefix.startswith("上") or prefix == "last":
        return monday + datetime.timedelta(days=weekday - 7)
    ahead = (weekday - today.weekday()) % 7
    return today + datetime.timedelta(days=ahead)


def _date_value(kind: str, m: re.Match[str], today: datetime.date) -> datetime.date | None:
    g = m.groups()
    if kind == "ymd":
        return _safe_date(int(g[0]), int(g[1]), int(g[2]))
    if kind == "md_zh":
        month, day = parse_number(g[0]), parse_number(g[1])
        return _month_day(month, day, None, today) if month and day else None
    if kind == "md_slash":
        a, b = int(g[0]), int(g[1])
        if a > 12 >= b:  # 23/11 can only be day/month
            a, b = b, a
        return _month_day(a, b, None, today)
    if kind in ("m_d", "d_m"):
        name, day, year = (g[0], g[1], g[2]) if kind == "m_d" else (g[1], g[0], g[2])
        if name == "may":  # lower-case "may" is the verb ("may 2 of us come")
            return None
        month = _MONTHS[name.lower()[:3]]
        return _month_day(month, int(day), int(year) if year else None, today)
    if kind == "rel":
        key = re.sub(r"\s+", " ", m.group().lower()).removeprefix("the ")
        return today + datetime.timedelta(days=_RELATIVE_DAYS[key])
    if kind == "in_days":
        days = parse_number(g[0] or g[1] or "")
        return today + datetime.timedelta(days=days) if days is not None and days < 400 else None
    if kind == "wd_zh":
        return _weekday(g[0] or "", _WEEKDAYS_ZH[g[1]], today)
    return _weekday(g[0] or "", _WEEKDAYS_EN.index(g[1].lower()), today)


def _find_dates(t: _Text, taken: list[tuple[int, int]], today: datetime.date) -> list[_Found]:
    found: list[_Found] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(t.norm):
            spans = taken + [(f.start, f.end) for f in found]
            if _overlaps(m.start(), m.end(), spans):
                continue
            value = _date_value(kind, m, today)
            if value is not None:
                found.append(_Found(value.isoformat(), m.start(), m.end()))
    return sorted(found, key=lambda f: f.start)


# --------------------------------------------------------------------------------------------
# Addresses

_ADDRESS_LEAD_STRONG = re.compile(
    r"(?:(?:送货|配送|收货|送餐|外卖|我的|我家|新的|家庭|公司)?地址"
    r"(?:应该|要)?(?:是|为|在|:|改成|改为|换成|改到|写)?)|"
    r"\b(?:change|update|set)\s+(?:the\s+|my\s+)?(?:delivery\s+)?address\s+to\b|"
    r"\b(?:(?:my|the|our|new|delivery|shipping|home|work)\s+)*address"
    r"(?:\s+is|\s+should\s+be|\s+will\s+be|\s*:|\s+to)?",
    re.IGNORECASE,
)
_ADDRESS_LEAD_WEAK = re.compile(
    r"(?:送到|送至|送去|送往|寄到|寄至|配送到|派送到|住在|我在)|"
    r"\b(?:deliver(?:ed)?|send|sent|bring|ship|take)\s+(?:(?:it|them|this|that|everything|"
    r"the\s+\w+|my\s+\w+)\s+)?to\b|"
    r"\b(?:i\s+live|we\s+live|i'm|i\s+am|we're|we\s+are)\s+(?:at|on)\b",
    re.IGNORECASE,
)
_ADDRESS_HINT = re.compile(
    r"\d|[路街道巷弄号號室楼樓栋棟层層单元區区市省县縣镇鎮村苑园園厦廈场場寓院校馆館店站厂廠]|"
    r"\b(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|boulevard|blvd|court|ct|place|pl|"
    r"apt|apartment|suite|unit|floor|building|block|room|district|city|province)\b",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# Where a clause ends. A full stop after St/Ave/No. is part of the address.
_CLAUSE_BREAK = re.compile(
    r"[,，;；。!！?？\n]|(?<!\bst)(?<!\brd)(?<!\bno)(?<!\bdr)(?<!\bln)(?<!\bct)(?<!\bpl)"
    r"(?<!\bave)(?<!\bapt)(?<!\bblvd)\.(?=\s|$)",
    re.IGNORECASE,
)
_POLITE_TAIL = re.compile(
    r"(?:[\s,.!?~…、。]*(?:谢谢你?|谢啦|谢了|多谢|麻烦(?:你|您)?了?|辛苦了?|哈|哦|噢|啊|呀|吧|啦|"
    r"(?<![a-z])(?:please|pls|thanks|thank\s+you|thx|cheers)))+[\s,.!?~…、。]*$|[\s,.!?~…、。:;]+$",
    re.IGNORECASE,
)
_LEAD_FILLER = re.compile(  # used with match(text, pos): no ^
    r"(?:[\s,.:;!?]|是|在|就是|应该是|不是|不对|请|麻烦|it'?s|it\s+is|is|at|to|the\s+address\s+is|"
    r"please|ok(?:ay)?|yes|yeah|sure|actually|sorry|oh|um|uh|well|no|not)+(?=\W|[\u4e00-\u9fff]|$)",
    re.IGNORECASE,
)
_EN_CONTINUE_STOP = re.compile(
    r"^(?:please|thanks|thank|thx|cheers|and|also|plus|my|i|i'm|i'd|we|it|it's|that|phone|"
    r"call|text|email|but|ok|okay|asap|today|tomorrow|see|bye)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"[?？]|吗|呢|什么|为什么|怎么|哪|几|\b(?:why|what|how|where|which|who)\b", re.IGNORECASE
)
_SMALL_TALK = re.compile(
    r"^(?:你好|您好|在吗|在不在|等等|等一下|稍等|hi|hello|hey|wait|hold\s+on|one\s+moment|hmm+)"
    r"[\s,.!~]*$",
    re.IGNORECASE,
)
_NUMBER_ONLY = re.compile(
    r"^(?:(?:make|change|set)\s+(?:it|that|them)(?:\s+to)?|change\s+to|改成|改为|换成|要|来|就)?\s*"
    rf"(?:\d+|{_CN_NUMERAL}|{_EN_NUMBER})\s*"
    r"(?:份|个|盒|套|杯|位|碗|\s*(?:sets?|portions?|of\s+them|please))?$",
    re.IGNORECASE,
)


def _clean_span(norm: str, start: int, end: int) -> tuple[int, int]:
    """Trim lead-in fillers and trailing punctuation/politeness off norm[start:end]."""
    m = _LEAD_FILLER.match(norm, start, end)
    if m:
        start = m.end()
    while start < end and norm[start].isspace():
        start += 1
    m = _POLITE_TAIL.search(norm[start:end])
    if m:
        end = start + m.start()
    return start, end


def _is_filler(text: str) -> bool:
    """A yes/no, thanks or a number-only correction: not an address or a free-text answer."""
    core = _POLITE_TAIL.sub("", text).strip(" ,.!?~:;，。！？")
    if len(core) < 2 and not core.isdigit():
        return True
    if _NUMBER_ONLY.match(core) or _SMALL_TALK.match(core) or is_cancel(core):
        return True
    if _PHONE_NAME_ONLY.match(core):
        return True  # "不对，手机号是 139…" minus the number: a phone correction, not an address
    # "No. 5 Main St" starts like a denial; a yes/no never carries digits.
    return yes_no(core) is not None and not re.search(r"\d", core)


def _segments(
    norm: str, start: int, end: int, taken: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """norm[start:end] split at clause breaks and around spans already taken by other values."""
    cuts = sorted(
        [(m.start(), m.end()) for m in _CLAUSE_BREAK.finditer(norm, start, end)]
        + [(s, e) for s, e in taken if s < end and start < e]
    )
    segments, pos = [], start
    for s, e in cuts:
        if s > pos:
            segments.append((pos, s))
        pos = max(pos, e)
    if pos < end:
        segments.append((pos, end))
    return segments


def _continues(
    norm: str, seg: tuple[int, int], gap: tuple[int, int], taken: list[tuple[int, int]]
) -> bool:
    """Whether the clause after an address is more of it ("Pudong, Shanghai") or something else."""
    if _overlaps(gap[0], gap[1], taken):  # a phone or e-mail sits in between
        return False
    text = norm[seg[0] : seg[1]].strip()
    if not text or _QUESTION.search(text) or _is_filler(text):
        return False
    if _CJK.search(text):  # Chinese addresses rarely hold a comma: continue only on a hint
        return bool(_ADDRESS_HINT.search(text))
    return not _EN_CONTINUE_STOP.match(text)


def _find_address(
    t: _Text, taken: list[tuple[int, int]], *, awaiting: bool, not_address: list[tuple[int, int]]
) -> _Found | None:
    """An address after a lead-in ("送到…", "my address is …"), or the answer when asked for one.

    `not_address` are spans that, if they make up a whole clause, show the clause is something
    else (a choice label answered to the wrong question).
    """
    norm = t.norm
    starts: list[tuple[int, bool]] = []  # (where the address may begin, after a lead-in?)
    for m in _ADDRESS_LEAD_STRONG.finditer(norm):
        starts.append((m.end(), True))
    for m in _ADDRESS_LEAD_WEAK.finditer(norm):
        first = _segments(norm, m.end(), len(norm), taken)[:1]
        # "送到" also starts "什么时候送到?": without being asked, it needs an address-like word.
        if awaiting or (first and _ADDRESS_HINT.search(norm[first[0][0] : first[0][1]])):
            starts.append((m.end(), True))
    starts.sort(reverse=True)  # the last lead-in is the correction
    if awaiting:
        starts.append((0, False))
    for begin, after_lead in starts:
        segments = _segments(norm, begin, len(norm), taken)
        first = None
        for i, (s, e) in enumerate(segments):
            question = _QUESTION.search(norm[s : e + 1])  # the "?" may be the break after it
            s, e = _clean_span(norm, s, e)
            if question:
                if after_lead:
                    break  # "送到哪里?", "the address is what?"
                continue
            if _is_filler(_residue(norm, s, e, not_address)) or _negated(norm, s):
                continue
            if _CJK.search(norm[s:e]) and not _ADDRESS_HINT.search(norm[s:e]):
                continue  # a Chinese address names a 路/号/区/…; "我在上班" is not one
            first = i
            break
        if first is None:
            continue
        s0 = _clean_span(norm, *segments[first])[0]
        end = segments[first][1]
        for j in range(first + 1, len(segments)):
            prev_end, (s, e) = segments[j - 1][1], segments[j]
            if not _continues(norm, (s, e), (prev_end, s), taken):
                break
            end = e
        s0, end = _clean_span(norm, s0, end)
        if end - s0 >= 2:
            return _Found(norm[s0:end], s0, end)
    return None


def _residue(norm: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """norm[start:end] without the parts inside `spans`."""
    return "".join(
        ch for i, ch in enumerate(norm[start:end], start) if not _overlaps(i, i + 1, spans)
    )


# --------------------------------------------------------------------------------------------
# Choices

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
            if len(gram) == 1 and (gram[0] in _EN_WORDS or gram[0].isdigit()):
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
    if _CJK.search(phrase):
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


def _find_choice(t: _Text, slot: SlotSpec, taken: list[tuple[int, int]]) -> list[_Found]:
    """Every mention of a choice of `slot`."""
    pattern, values = _choice_regex(slot)
    if pattern is None:
        return []
    found: list[_Found] = []
    for m in pattern.finditer(t.norm):
        if _overlaps(m.start(), m.end(), taken):
            continue
        index = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
        found.append(_Found(values[index], m.start(), m.end()))
    return found


def _resolve_choice(found: list[_Found], norm: str) -> _Found | None:
    """One choice, or None when the text names several ("classic or kids?")."""
    kept = [f for f in found if not _negated(norm, f.start)]
    if len({f.value for f in kept}) == 1:
        return kept[0]
    # "把经典套餐换成儿童套餐" / "change classic to the kids set": the target wins.
    targets = [f for f in kept if _CHANGE_TO.search(norm[max(0, f.start - 24) : f.start])]
    if len({f.value for f in targets}) == 1:
        return targets[-1]
    return None


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
    rf"(?:(?<=[x×*])|(?<![A-Za-z0-9.]))\d+(?![\d.]\d)(?=[^\d]|$)|{_CN_NUMERAL}|{_EN_NUMBER}",
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
        if _overlaps(start, end, taken):
            continue
        value = parse_number(token)
        if value is None:
            continue
        after, before = norm[end:], norm[max(0, start - 24) : start]
        if _NOT_QUANTITY_AFTER.match(after) or _NOT_QUANTITY_BEFORE.search(before):
            continue
        if _CJK.match(token) and not _ZH_NUMERAL_OK_AFTER.match(after):
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


def _find_quantity(
    t: _Text, taken: list[tuple[int, int]], *, awaited: bool, bare_ok: bool
) -> _Found | None:
    """A count, read conservatively; see the module docstring for why."""
    norm = t.norm
    candidates = [c for c in _number_candidates(norm, taken) if not _negated(norm, c.start)]
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
            rest = "".join(ch for i, ch in enumerate(rest) if not _overlaps(i, i + 1, taken))
            # Unasked, a bare number counts only when nothing else is said ("no, three").
            if awaited or _FILLER_WORDS.match(rest.strip()):
                chosen = c
        if chosen is None and awaited and not candidates:
            m = _ARTICLE_UNIT.search(norm)  # "a classic set" when asked how many
            if m and not _overlaps(m.start(1), m.end(1), taken):
                return _Found("1", m.start(1), m.end(1))
    if chosen is None:
        return None
    return _Found(str(chosen.value), chosen.start, chosen.end)


# --------------------------------------------------------------------------------------------
# Free text

_TEXT_LEAD = re.compile(
    r"(?:[\s,.:;#]|不对|不是|就是|我的|订单号码?|订单编号|订单|单号|编号|手机号码?|手机|电话号码?|电话|"
    r"号码|是|为|(?:no|actually|sorry|it'?s|it\s+is|my|the|order|number|ref(?:erence)?|phone|"
    r"is|was)(?![a-z0-9]))+",
    re.IGNORECASE,
)


def _find_text(t: _Text) -> _Found | None:
    norm = t.norm
    start, end = 0, len(norm)
    m = _TEXT_LEAD.match(norm)
    if m and m.end() < end:
        start = m.end()
    start, end = _clean_span(norm, start, end)
    text = norm[start:end]
    whole = norm.strip(" ,.!?~:;，。！？")
    if not text or is_cancel(whole):
        return None
    if not re.search(r"\d", whole) and (
        yes_no(whole) is not None or _UNSURE.match(whole.lower()) or _QUESTION.search(whole)
    ):
        return None  # "好的", "不知道", "what?" are not an order number
    return _Found(text, start, end)


# --------------------------------------------------------------------------------------------
# The public functions


def _only(slots: Sequence[SlotSpec], slot_type: str, awaiting: str | None) -> SlotSpec | None:
    """The slot a value of this type goes to: the awaited one, else the only one of the type."""
    of_type = [s for s in slots if s.slot_type == slot_type]
    for s in of_type:
        if s.name == awaiting:
            return s
    return of_type[0] if len(of_type) == 1 else None


def extract(
    text: str,
    slots: Sequence[SlotSpec],
    *,
    awaiting: str | None = None,
    today: datetime.date | None = None,
) -> dict[str, Entity]:
    """Values for the given slots found in text. `awaiting` is the slot the bot just asked for.

    `today` anchors relative dates; pass the user's local date (the default is the current
    date in Django's active time zone).
    """
    t = _Text(text)
    norm = t.norm
    awaited = next((s for s in slots if s.name == awaiting), None)
    awaited_type = awaited.slot_type if awaited else None
    result: dict[str, Entity] = {}

    def put(slot: SlotSpec | None, found: _Found | None) -> None:
        if slot is not None and found is not None and slot.name not in result:
            result[slot.name] = Entity(slot.name, found.value, t.raw(found.start, found.end))

    taken: list[tuple[int, int]] = []

    emails = _find_emails(t)
    taken += [(f.start, f.end) for f in emails]
    put(_only(slots, "email", awaiting), _pick_last(emails, norm))

    phones = _find_phones(t, taken, expected=awaited_type == "phone")
    taken += [(f.start, f.end) for f in phones]
    put(_only(slots, "phone", awaiting), _pick_last(phones, norm))

    dates = _find_dates(t, taken, today or timezone.localdate())
    taken += [(f.start, f.end) for f in dates]
    taken += [(m.start(), m.end()) for m in _TIME.finditer(norm)]
    put(_only(slots, "date", awaiting), _pick_last(dates, norm))

    choice_slots = [s for s in slots if s.slot_type == "choice"]
    choice_mentions = {s.name: _find_choice(t, s, taken) for s in choice_slots}

    address_slot = _only(slots, "address", awaiting)
    if address_slot is not None:
        mentions = [(f.start, f.end) for found in choice_mentions.values() for f in found]
        address = _find_address(t, taken, awaiting=awaited_type == "address", not_address=mentions)
        if address is not None:
            taken.append((address.start, address.end))
            put(address_slot, address)

    for slot in choice_slots:
        mentions = [f for f in choice_mentions[slot.name] if not _overlaps(f.start, f.end, taken)]
        chosen = _resolve_choice(mentions, norm)
        put(slot, chosen)
        taken += [(f.start, f.end) for f in mentions]

    number_slot = _only(slots, "number", awaiting)
    if number_slot is not None:
        is_awaited = number_slot.name == awaiting
        number_slots = sum(1 for s in slots if s.slot_type == "number")
        # Bare "three" when nothing else was asked: the confirmation step, or a correction.
        bare_ok = number_slots == 1 and awaiting is None
        put(number_slot, _find_quantity(t, taken, awaited=is_awaited, bare_ok=bare_ok))

    if awaited is not None and awaited.slot_type == "text":
        put(awaited, _find_text(t))
    return result


# --------------------------------------------------------------------------------------------
# Yes / no / cancel

_A_NOT_A = re.compile(r"(是不是|对不对|好不好|行不行|可不可以|要不要)")
_UNSURE = re.compile(
    r"^(?:不确定|不知道|不清楚|不一定|不客气|没关系|not\s+sure|i\s+don'?t\s+know|dunno|maybe)",
    re.IGNORECASE,
)
_YES_DESPITE_NO = re.compile(
    r"^(?:没错|没问题|不错|no\s+problem|no\s+worries|not\s+a\s+problem|why\s+not)", re.IGNORECASE
)
_NO_ANYWHERE = re.compile(
    r"不对|不是|错了|搞错|弄错|不正确|有误|写错|"
    r"\b(?:wrong|incorrect|not\s+right|not\s+correct|isn'?t\s+right|mistake|that'?s\s+not)\b",
    re.IGNORECASE,
)
_NO_LEAD = re.compile(
    r"^(?:不|没有|别|否|算了|取消|错|"
    r"(?:no|nope|nah|not|don'?t|do\s+not|negative|cancel|never\s*mind|n)\b)",
    re.IGNORECASE,
)
_YES_LEAD_ZH = re.compile(
    r"^(?:确认无误|都对|全对|都没问题|是的?|是滴|对的?|对头|好的?|好滴|好哒|好嘞|嗯+|恩+|行|可以|确认|确定|正确|没错|没问题|"
    r"不错|就这样|要的|ok|okay|👌|👍)"
    r"(?:[啊呀的滴哒吧嘛了哈呢嗯]|的呀)*",
    re.IGNORECASE,
)
_YES_LEAD_EN = re.compile(
    r"^(?:yes|yeah|yea|ya|yep|yup|y|sure|correct|right|alright|all\s+right|ok|okay|k|confirm|"
    r"confirmed|absolutely|definitely|of\s+course|go\s+ahead|perfect|great|fine|exactly|"
    r"affirmative|please\s+do|do\s+it|sounds\s+good|looks\s+good|all\s+good|that'?s\s+right|"
    r"that\s+is\s+right|that'?s\s+correct|that\s+is\s+correct|that'?s\s+it|yes\s+please)\b",
    re.IGNORECASE,
)
_CORRECTION = re.compile(
    r"但|不过|可是|改|换|其实|"
    r"\b(?:but|actually|change|make\s+it|make\s+that|instead|except|however|though)\b",
    re.IGNORECASE,
)
_LEAD_NOISE = re.compile(r"^(?:(?:oh|well|um+|uh+|hmm+|呃|额|噢|哦)[\s,.!…]*)+", re.IGNORECASE)


def yes_no(text: str) -> bool | None:
    """True for a confirmation, False for a denial (or a correction), None otherwise.

    A correction ("不对，手机号是139…", "yes, but make it two") is False: the caller must not
    confirm what it showed, and runs extract() on the same message for the new values.
    """
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s = _A_NOT_A.sub("", _LEAD_NOISE.sub("", s)).strip()
    if not s or _UNSURE.match(s):
        return None
    m = _YES_DESPITE_NO.match(s)
    if m:
        return not bool(_CORRECTION.search(s[m.end() :]) or _NO_ANYWHERE.search(s[m.end() :]))
    if _NO_ANYWHERE.search(s) or _NO_LEAD.match(s):
        return False
    if s.endswith("?"):
        return None  # "嗯？", "yes?": a question back, not an answer
    m = _YES_LEAD_ZH.match(s)
    if m and (
        m.end() == len(s) or not re.match(r"[\w]", s[m.end()]) or _YES_LEAD_ZH.match(s[m.end() :])
    ):
        return not _CORRECTION.search(s[m.end() :])
    m = _YES_LEAD_EN.match(s)
    if m and (len(m.group()) > 1 or m.end() == len(s)):  # "y" alone, not "y'all"
        return not _CORRECTION.search(s[m.end() :])
    return None


_CANCEL_ANYWHERE = re.compile(
    r"算了|不要了|不用了|不订了|不点了|不买了|不想要了|不想订了|不想点了|别订了|取消|"
    r"\b(?:cancel|never\s*mind|forget\s+(?:it|about\s+it)|changed\s+my\s+mind)\b",
    re.IGNORECASE,
)
_CANCEL_NEGATED = re.compile(
    r"(?:不要|别|不用|不|don'?t|do\s+not|not|no\s+need\s+to|won'?t|never)\s*(?:取消|cancel)",
    re.IGNORECASE,
)
# Words that cancel only when they are the whole message ("stop", not "the bus stop").
_CANCEL_WHOLE = re.compile(
    r"^(?:please\s+)?(?:stop|quit|abort|exit|停|停止|退出|结束)"
    r"(?:\s+(?:it|please|now|that))?(?:\s*please)?$",
    re.IGNORECASE,
)


def is_cancel(text: str) -> bool:
    """The user abandons the current task: 算了/取消/不要了/cancel/never mind/forget it/stop."""
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s = re.sub(r"[\s,.!?~…、，。！？]+$", "", s)
    if _CANCEL_WHOLE.match(s):
        return True
    cleaned = _CANCEL_NEGATED.sub("", s)
    return bool(_CANCEL_ANYWHERE.search(cleaned))
