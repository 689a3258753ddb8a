"""Whole-message answers: yes / no (a correction counts as no) and cancelling the task."""

from __future__ import annotations

import re
import unicodedata

_A_NOT_A = re.compile(r"(是不是|对不对|好不好|行不行|可不可以|要不要)")
UNSURE = re.compile(
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
    if not s or UNSURE.match(s):
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
