"""Pick a conversation up on another device with a short one-time code.

The owner asks for a code (``K7QF-M2XD``) on one device and types it on another; redeeming it
grants the second browser session access to the conversation (``ConversationGrant``). Only a
keyed SHA-256 of the code is stored, a code works once and for ``CHAT_PICKUP_CODE_MINUTES``, and
failed attempts are rate-limited per session. Codes never appear in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from chatsite.exceptions import ApplicationError
from conversations.models import Conversation, ConversationGrant, PickupCode
from conversations.selectors import Actor, actor_owns, conversation_get_for_actor

logger = logging.getLogger(__name__)

# No 0/O, 1/I/L: 31 symbols that survive being read aloud or typed from a phone screen.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# 31^8 ≈ 8.5e11 codes against at most MAX_FAILURES guesses per session per window.
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 15 * 60


# No such code is "not found"; a code that was real but is spent is a conflict with its state.
class PickupCodeInvalid(ApplicationError):
    code = "pickup_code_invalid"
    status = 404


class PickupCodeExpired(ApplicationError):
    code = "pickup_code_expired"
    status = 409


class PickupCodeUsed(ApplicationError):
    code = "pickup_code_used"
    status = 409


class TooManyAttempts(ApplicationError):
    code = "too_many_attempts"
    status = 429


class NotOwner(ApplicationError):
    """Only the owner hands a conversation on (a session it was granted to cannot)."""

    code = "not_owner"
    status = 403


class SessionRequired(ApplicationError):
    """The redeemer has no browser session to grant the conversation to."""

    code = "session_required"
    status = 403


def normalise(code: str) -> str:
    """Upper case without spaces or dashes: what people type becomes what was issued."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def code_hash(code: str) -> str:
    """The stored form: HMAC-SHA-256 keyed with SECRET_KEY, hex.

    Keyed rather than a bare SHA-256: 31^8 codes are few enough to hash them all offline, so a
    database dump alone must not reveal a live code.
    """
    key = hashlib.sha256(f"chatsite.pickup:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, normalise(code).encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def pickup_code_create(*, conversation: Conversation) -> tuple[str, datetime]:
    """Make a one-time code for the conversation; its earlier unused codes stop working."""
    now = timezone.now()
    expires_at = now + timedelta(minutes=settings.CHAT_PICKUP_CODE_MINUTES)
    with transaction.atomic():
        unused = PickupCode.objects.filter(conversation=conversation, used_at__isnull=True)
        # Codes replaced by the previous request go; those replaced now show as expired.
        unused.filter(expires_at__lte=now).delete()
        unused.update(expires_at=now)
        for _attempt in range(5):
            code = _new_code()
            try:
                with transaction.atomic():
                    PickupCode.objects.create(
                        conversation=conversation, code_hash=code_hash(code), expires_at=expires_at
                    )
                break
            except IntegrityError:  # the same code is live elsewhere: one in ~10^11, draw again
                continue
        else:
            raise RuntimeError("could not draw an unused pickup code")
    logger.info(
        "pickup code created",
        extra={"conversation_pk": conversation.pk, "expires_at": expires_at.isoformat()},
    )
    return code, expires_at


def _failure_key(actor: Actor) -> str:
    return f"conversations:pickup-failures:{actor.session_key or f'user-{actor.user_id}'}"


def _count_failure(key: str) -> None:
    # add() starts the window with the first failure; incr() is atomic on Redis and locmem.
    cache.add(key, 0, FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, FAILURE_WINDOW_SECONDS)


def pickup_code_redeem(*, code: str, actor: Actor) -> Conversation:
    """Open the code's conversation for the actor's session; the code is then used up.

    Raises:
        TooManyAttempts: MAX_FAILURES failures from this session in the window.
        PickupCodeInvalid, PickupCodeExpired, PickupCodeUsed: the code does not open anything.
        SessionRequired: the actor has no session to grant it to.
    """
    if not actor.session_key:
        raise SessionRequired("A browser session is needed to open a conversation")
    key = _failure_key(actor)
    if (cache.get(key) or 0) >= MAX_FAILURES:
        logger.warning("pickup code attempts blocked", extra={"reason": TooManyAttempts.code})
        raise TooManyAttempts(
            "Too many wrong codes; wait a few minutes and try again",
            extra={"retry_after": FAILURE_WINDOW_SECONDS},
        )
    try:
        conversation = _redeem(code, actor)
    except (PickupCodeInvalid, PickupCodeExpired, PickupCodeUsed) as exc:
        _count_failure(key)
        logger.info("pickup code refused", extra={"reason": exc.code})
        raise
    return conversation


def _redeem(code: str, actor: Actor) -> Conversation:
    normalised = normalise(code)
    if len(normalised) != CODE_LENGTH or any(ch not in ALPHABET for ch in normalised):
        raise PickupCodeInvalid("This code is not valid")
    with transaction.atomic():
        pickup = (
            PickupCode.objects.select_for_update()
            .select_related("conversation")
            .filter(code_hash=code_hash(normalised))
            .first()
        )
        if pickup is None:
            raise PickupCodeInvalid("This code is not valid")
        conversation = pickup.conversation
        # Typed on a device that can already open it: nothing to grant, and the code stays
        # usable for the device it was meant for.
        if actor_owns(conversation, actor) or (
            conversation_get_for_actor(conversation.public_id, actor) is not None
        ):
            return conversation
        if pickup.used_at is not None:
            raise PickupCodeUsed("This code has already been used")
        now = timezone.now()
        if pickup.expires_at <= now:
            raise PickupCodeExpired("This code has expired")
        pickup.used_at = now
        pickup.save(update_fields=["used_at"])
        ConversationGrant.objects.get_or_create(
            conversation=conversation, session_key=actor.session_key
        )
    logger.info("pickup code redeemed", extra={"conversation_pk": conversation.pk})
    return conversation
