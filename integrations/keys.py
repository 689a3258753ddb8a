"""API keys: made once and shown once, stored as a hash, checked on every request."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations.exceptions import ApiKeyInvalid
from integrations.models import ApiKey, Scope

KEY_PREFIX = "chs_"
# last_used_at is written at most this often per key: not one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: `raw` is shown to staff once and never stored."""

    api_key: ApiKey
    raw: str


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def scopes_clean(scopes: Iterable[str]) -> list[str]:
    """The scopes, known and without repeats, in a stable order.

    Raises:
        ValidationError: an unknown scope, or none at all.
    """
    wanted = set(scopes)
    unknown = wanted - set(Scope.values)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(sorted(unknown))}"})
    if not wanted:
        raise ValidationError({"scopes": "Give the key at least one scope"})
    return [s for s in Scope.values if s in wanted]


def api_key_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    rate_limit: int | None = None,
    created_by: AbstractBaseUser | None = None,
) -> NewApiKey:
    """Make a key for `owner`; the returned raw key is the only copy there will ever be."""
    secret = secrets.token_urlsafe(32)  # 256 bits
    raw = f"{KEY_PREFIX}{secret}"
    api_key = ApiKey(
        name=name,
        owner=owner,
        prefix=raw[: len(KEY_PREFIX) + 8],
        key_hash=hash_key(raw),
        scopes=scopes_clean(scopes),
        expires_at=expires_at,
        rate_limit=rate_limit,
        created_by=created_by,
    )
    api_key.full_clean(exclude=["owner", "created_by"])
    api_key.save()
    return NewApiKey(api_key=api_key, raw=raw)


def api_key_revoke(api_key: ApiKey) -> None:
    """Revoke the key: the next request with it is refused (keys are never cached)."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def api_key_authenticate(raw: str) -> ApiKey:
    """The live key for `raw`, with its owner loaded (one query).

    Raises:
        ApiKeyInvalid: code api_key_invalid, api_key_revoked or api_key_expired.
    """
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        raise ApiKeyInvalid("The API key is not valid")
    api_key = ApiKey.objects.select_related("owner").filter(key_hash=hash_key(raw)).first()
    if api_key is None or not api_key.owner.is_active:
        raise ApiKeyInvalid("The API key is not valid")
    now = timezone.now()
    if api_key.revoked_at is not None:
        raise ApiKeyInvalid("The API key was revoked", code="api_key_revoked")
    if api_key.expires_at is not None and api_key.expires_at <= now:
        raise ApiKeyInvalid("The API key has expired", code="api_key_expired")
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
