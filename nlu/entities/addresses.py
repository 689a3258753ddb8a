"""Delivery addresses: after a lead-in ("送到…", "my address is…") or as the awaited answer."""

from __future__ import annotations

import re

from .answers import is_cancel, yes_no
from .contacts import PHONE_NAME_ONLY
from .numbers import CN_NUMERAL, EN_NUMBER
from .text import CJK, POLITE_TAIL, QUESTION, Found, Text, clean_span, negated, overlaps

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
# Where a clause ends. A full stop after St/Ave/No. is part of the address.
_CLAUSE_BREAK = re.compile(
    r"[,，;；。!！?？\n]|(?<!\bst)(?<!\brd)(?<!\bno)(?<!\bdr)(?<!\bln)(?<!\bct)(?<!\bpl)"
    r"(?<!\bave)(?<!\bapt)(?<!\bblvd)\.(?=\s|$)",
    re.IGNORECASE,
)
_EN_CONTINUE_STOP = re.compile(
    r"^(?:please|thanks|thank|thx|cheers|and|also|plus|my|i|i'm|i'd|we|it|it's|that|phone|"
    r"call|text|email|but|ok|okay|asap|today|tomorrow|see|bye)\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(?:你好|您好|在吗|在不在|等等|等一下|稍等|hi|hello|hey|wait|hold\s+on|one\s+moment|hmm+)"
    r"[\s,.!~]*$",
    re.IGNORECASE,
)
_NUMBER_ONLY = re.compile(
    r"^(?:(?:make|change|set)\s+(?:it|that|them)(?:\s+to)?|change\s+to|改成|改为|换成|要|来|就)?\s*"
    rf"(?:\d+|{CN_NUMERAL}|{EN_NUMBER})\s*"
    r"(?:份|个|盒|套|杯|位|碗|\s*(?:sets?|portions?|of\s+them|please))?$",
    re.IGNORECASE,
)


def _is_filler(text: str) -> bool:
    """A yes/no, thanks or a number-only correction: not an address or a free-text answer."""
    core = POLITE_TAIL.sub("", text).strip(" ,.!?~:;，。！？")
    if len(core) < 2 and not core.isdigit():
        return True
    if _NUMBER_ONLY.match(core) or _SMALL_TALK.match(core) or is_cancel(core):
        return True
    if PHONE_NAME_ONLY.match(core):
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
    if overlaps(gap[0], gap[1], taken):  # a phone or e-mail sits in between
        return False
    text = norm[seg[0] : seg[1]].strip()
    if not text or QUESTION.search(text) or _is_filler(text):
        return False
    if CJK.search(text):  # Chinese addresses rarely hold a comma: continue only on a hint
        return bool(_ADDRESS_HINT.search(text))
    return not _EN_CONTINUE_STOP.match(text)


def find_address(
    t: Text, taken: list[tuple[int, int]], *, awaiting: bool, not_address: list[tuple[int, int]]
) -> Found | None:
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
            question = QUESTION.search(norm[s : e + 1])  # the "?" may be the break after it
            s, e = clean_span(norm, s, e)
            if question:
                if after_lead:
                    break  # "送到哪里?", "the address is what?"
                continue
            if _is_filler(_residue(norm, s, e, not_address)) or negated(norm, s):
                continue
            if CJK.search(norm[s:e]) and not _ADDRESS_HINT.search(norm[s:e]):
                continue  # a Chinese address names a 路/号/区/…; "我在上班" is not one
            first = i
            break
        if first is None:
            continue
        s0 = clean_span(norm, *segments[first])[0]
        end = segments[first][1]
        for j in range(first + 1, len(segments)):
            prev_end, (s, e) = segments[j - 1][1], segments[j]
            if not _continues(norm, (s, e), (prev_end, s), taken):
                break
            end = e
        s0, end = clean_span(norm, s0, end)
        if end - s0 >= 2:
            return Found(norm[s0:end], s0, end)
    return None


def _residue(norm: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
    """norm[start:end] without the parts inside `spans`."""
    return "".join(
        ch for i, ch in enumerate(norm[start:end], start) if not overlaps(i, i + 1, spans)
    )
