"""Dates (absolute, relative, weekdays; Chinese and English) and the times that are not counts."""

from __future__ import annotations

import datetime
import re

from .numbers import CN_NUMERAL, parse_number
from .text import Found, Text, overlaps

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
_MD_ZH = rf"(?<![\d年])(\d{{1,2}}|{CN_NUMERAL})\s*月\s*(\d{{1,2}}|{CN_NUMERAL})\s*[日号]"
_ORDINAL = r"(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_RELATIVE = (
    r"大后天|后天|明天|明日|明早|明晚|今天|今日|今晚|"
    r"\b(?:the\s+)?day\s+after\s+tomorrow\b|\btomorrow\b|\btoday\b|\btonight\b"
)
_IN_DAYS = rf"(\d{{1,2}}|{CN_NUMERAL})\s*天(?:以后|之后|后)|\bin\s+(\d{{1,2}}|[a-z]+)\s+days?\b"
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
TIME = re.compile(
    rf"(?:\d{{1,2}}|{CN_NUMERAL})\s*[点點](?:半|\d{{1,2}}分?|{CN_NUMERAL}分?)?|"
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


def find_dates(t: Text, taken: list[tuple[int, int]], today: datetime.date) -> list[Found]:
    found: list[Found] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(t.norm):
            spans = taken + [(f.start, f.end) for f in found]
            if overlaps(m.start(), m.end(), spans):
                continue
            value = _date_value(kind, m, today)
            if value is not None:
                found.append(Found(value.isoformat(), m.start(), m.end()))
    return sorted(found, key=lambda f: f.start)
