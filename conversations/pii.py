"""Personal data at rest: Fernet encryption, a keyed blind index, masks for display.

Keys come from settings (``PII_ENCRYPTION_KEYS``, ``PII_INDEX_KEY``). In development, with a key
unset, a key file under ``VAR_DIR`` is made on first use; production refuses to start without
both keys (chatsite/settings.py). See docs/operations.md, "Personal data".
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from chatsite import logredact

logger = logging.getLogger(__name__)

Kind = Literal["phone", "email", "address", "text"]
KINDS: tuple[str, ...] = ("phone", "email", "address", "text")


class PiiKeyError(Exception):
    """No usable key is configured (or a configured key is malformed)."""


class PiiDecryptError(Exception):
    """A token could not be decrypted with any configured key (wrong key or damaged data)."""


# --- keys ---------------------------------------------------------------------------------------


def _dev_keys(path: Path) -> dict[str, str]:
    """Read the development key file, creating it (mode 0600) the first time."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        pass
    keys = {"encryption_key": Fernet.generate_key().decode(), "index_key": secrets.token_hex(32)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    try:
        # link() fails if another process won the race: then both use the winner's keys, so
        # nothing is ever encrypted under a key that is thrown away.
        os.link(tmp, path)
        logger.warning(
            "PII keys are not set: created development keys in %s. Set PII_ENCRYPTION_KEYS and "
            "PII_INDEX_KEY in production; data encrypted with these keys is lost without the file.",
            path,
        )
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return dict(json.loads(path.read_text()))


def _configured_keys() -> tuple[tuple[str, ...], str]:
    """Return (encryption keys, index key) from settings, filling gaps from the dev key file."""
    enc = tuple(settings.PII_ENCRYPTION_KEYS)
    index = str(settings.PII_INDEX_KEY or "")
    if enc and index:
        return enc, index
    dev_file = getattr(settings, "PII_DEV_KEY_FILE", None)
    if dev_file is None:
        raise PiiKeyError("PII_ENCRYPTION_KEYS and PII_INDEX_KEY must both be set")
    dev = _dev_keys(Path(dev_file))
    return enc or (dev["encryption_key"],), index or dev["index_key"]


@functools.lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    # Cached by key values (not once per process), so a settings override in tests takes effect.
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise PiiKeyError(f"PII_ENCRYPTION_KEYS holds a malformed Fernet key: {exc}") from None


def fernet() -> MultiFernet:
    """The MultiFernet for the configured keys: the first encrypts, all decrypt."""
    return _fernet_for(_configured_keys()[0])


def primary_fernet() -> Fernet:
    """The Fernet for the newest key alone (tells whether a token still needs rotating)."""
    return Fernet(_configured_keys()[0][0].encode())


# --- encryption ---------------------------------------------------------------------------------


def encrypt(value: str) -> str:
    """Encrypt a string under the newest key; returns an ASCII Fernet token."""
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a Fernet token with any configured key.

    Raises:
        PiiDecryptError: no key opens the token. The ciphertext is never returned in its place.
    """
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise PiiDecryptError(
            "cannot decrypt personal data: wrong or missing key in PII_ENCRYPTION_KEYS, "
            "or the stored value is not a Fernet token"
        ) from exc


# --- normalising, blind index, masks ------------------------------------------------------------

_PHONE_JUNK = re.compile(r"[\s+\-().]")
_SPACES = re.compile(r"\s+")


def normalise(value: str, kind: str) -> str:
    """Canonical form used for the blind index, so differently typed values compare equal."""
    _check_kind(kind)
    # NFKC first: full-width digits and letters (１３８, ＠) are common in Chinese input methods.
    value = unicodedata.normalize("NFKC", value)
    if kind == "phone":
        digits = _PHONE_JUNK.sub("", value)
        if digits.startswith("00"):  # 0086... is the dial-out spelling of +86...
            digits = digits[2:]
        if len(digits) == 11 and digits.startswith("1"):
            digits = "86" + digits  # a mainland mobile typed without its country code
        return digits
    if kind == "email":
        return value.strip().lower()
    return _SPACES.sub(" ", value.casefold()).strip()


def blind_index(value: str, kind: str) -> str:
    """HMAC-SHA256 (hex) of the normalised value: searchable equality without the plaintext."""
    index_key = _configured_keys()[1]
    # The kind is part of the message, so a phone and a text that normalise alike never collide.
    message = f"{kind}\x00{normalise(value, kind)}".encode()
    return hmac.new(index_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def mask(value: str, kind: str) -> str:
    """A display form that shows enough to recognise a value, e.g. 138****8000, a***@example.com."""
    _check_kind(kind)
    value = unicodedata.normalize("NFKC", value).strip()
    if kind == "phone":
        digits = normalise(value, "phone")
        if len(digits) == 13 and digits.startswith("861"):
            digits = digits[2:]  # show a mainland number the way people write it
        return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 8 else "****"
    if kind == "email" and "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if kind == "address":
        return f"{value[: min(6, len(value) // 2)]}***"
    return f"{value[:1]}***" if value else ""


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown personal-data kind {kind!r}; expected one of {KINDS}")


# --- personal data inside free text -------------------------------------------------------------


def markdown_escape(text: str) -> str:
    """Backslash the characters Markdown would read as formatting (139****5678 is not bold)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", text)


_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>~|#]")


def _plain(text: str) -> str:
    return text


def mask_contacts(text: str, *, escape: Callable[[str], str] = _plain) -> str:
    """Mask phone numbers and e-mail addresses in a message before it is stored (139****5678).

    Messages are stored readable (history, review), so what the patterns of the log filter
    recognise is masked in them too; an address is masked when the dialogue takes it as a slot
    (mask_known), since free text gives no reliable way to tell where an address begins. Replies
    are Markdown: pass `escape=markdown_escape` for them.
    """
    text = logredact.EMAIL.sub(lambda m: escape(mask(m.group(), "email")), text)
    text = logredact.CN_MOBILE.sub(lambda m: escape(mask(m.group(), "phone")), text)
    return logredact.INTERNATIONAL.sub(lambda m: _mask_international(m, escape), text)


def _mask_international(match: re.Match[str], escape: Callable[[str], str]) -> str:
    number = match.group()
    return escape(mask(number, "phone")) if sum(c.isdigit() for c in number) >= 8 else number


def mask_known(
    text: str, values: list[tuple[str, str]], *, escape: Callable[[str], str] = _plain
) -> str:
    """Mask every occurrence of the given (value, kind) pairs, then phone numbers and e-mails."""
    for value, kind in sorted(values, key=lambda v: -len(v[0])):
        if value.strip():
            text = text.replace(value, escape(mask(value, kind if kind in KINDS else "text")))
    return mask_contacts(text, escape=escape)
