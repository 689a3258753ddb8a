"""E-mail addresses and phone numbers (Chinese mobiles and landlines, international numbers)."""

from __future__ import annotations

import re

from chatsite.logredact import CN_MOBILE, EMAIL

from .text import Found, Text, overlaps

_PHONE_LEAD = re.compile(
    r"(?:手机号码?|手机|电话号码?|电话|联系方式|号码|"
    r"\b(?:phone|mobile|cell|telephone|tel)(?:\s+(?:number|no\.?))?|\bnumber)"
    r"\s*(?:是|为|:|改成|改为|换成|is|should\s+be|to|=)?\s*$",
    re.IGNORECASE,
)
# A clause that only names the phone ("手机号是", "my number is") once the number is taken out.
PHONE_NAME_ONLY = re.compile(
    r"^(?:(?:我的|新的?|my|the|new|our)\s*)?" + _PHONE_LEAD.pattern, re.IGNORECASE
)
_INTERNATIONAL = re.compile(r"(?<![\d+])(?:\+|00)\s?[1-9][\d\s().\-]{5,}\d(?!\d)")
# Landlines with an area code (021-12345678), taken only where a phone is expected.
_CN_LANDLINE = re.compile(r"(?<![\d+])0\d{2,3}[\s\-]?\d{7,8}(?!\d)")
_ANY_NUMBER = re.compile(r"(?<![\d+])\(?\d[\d\s().\-]{5,}\d(?!\d)")


def find_emails(t: Text) -> list[Found]:
    return [Found(m.group().lower(), m.start(), m.end()) for m in EMAIL.finditer(t.norm)]


def find_phones(t: Text, taken: list[tuple[int, int]], *, expected: bool) -> list[Found]:
    """Phone numbers in order of position; local formats only when a phone is `expected`."""
    found: list[Found] = []

    def add(value: str, start: int, end: int) -> None:
        if not overlaps(start, end, taken + [(f.start, f.end) for f in found]):
            found.append(Found(value, start, end))

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
