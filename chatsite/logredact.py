"""A logging filter that keeps phone numbers, e-mail addresses and street addresses out of logs.

Pragmatic, not exhaustive: it catches mainland China mobiles in the usual spellings, +CC numbers
of 8+ digits, e-mail addresses, Chinese addresses (a phrase with a number + 号/室, or a
province/city/district followed by a road/street) and English "12 Baker Street" addresses. The
real protection is not logging message text at all; this is the net under that rule.
"""

from __future__ import annotations

import logging
import re
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Mainland mobile: optional +86 / 0086 / (+86), then 1[3-9]x xxxx xxxx with optional separators.
CN_MOBILE = re.compile(
    r"(?<![\d+])(?:\(?(?:\+|00)?86\)?[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}(?!\d)"
)
# Any +CC number; the digit count (8+) is checked in _international.
INTERNATIONAL = re.compile(r"\+\d[\d\s().\-]{5,}\d")
# A run of CJK/letters/digits (punctuation and spaces end it) that looks like an address.
CJK_RUN = re.compile(r"[\u4e00-\u9fff0-9A-Za-z#\-－]+")
CN_ADDRESS_HINT = re.compile(r"\d+\s*[号號室]|[省市区區县縣][^省市区區县縣]*?[路街]")
EN_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'.\-]*\s+){1,4}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl)\b\.?"
)

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Replace personal data in one string with [email], [phone] and [address]."""
    # E-mail first: its local part may hold digits that look like a phone number.
    text = EMAIL.sub("[email]", text)
    text = CN_MOBILE.sub("[phone]", text)
    text = INTERNATIONAL.sub(_international, text)
    text = EN_ADDRESS.sub("[address]", text)
    return CJK_RUN.sub(_cjk_address, text)


def _international(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group())
    return "[phone]" if digits >= 8 else match.group()


def _cjk_address(match: re.Match[str]) -> str:
    # The whole phrase goes ("我的地址是北京市…88号"): cutting exactly where an address starts
    # is guesswork, and over-redacting a log line costs nothing.
    return "[address]" if CN_ADDRESS_HINT.search(match.group()) else match.group()


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_any(v) for v in value)
    return value


class RedactPersonalData(logging.Filter):
    """Redact the message, its arguments and ``extra`` fields in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            # python-json-logger merges a dict message into the output fields.
            record.msg = _redact_any(record.msg)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: keep what there is, still redacted
                message = f"{record.msg} {record.args}"
            # Formatting first means non-string arguments (an object whose str() holds a phone
            # number) are covered too; the record then carries the finished, redacted text.
            record.msg = redact(message)
            record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_any(value))
        return True
