"""Revealing a decrypted personal value: permission-checked, audited, never logged."""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import transaction

from conversations.exceptions import PersonalDataUnreadable, RevealNotPermitted, SlotNotFound
from conversations.models import PersonalDataReveal, SlotValue
from conversations.pii import PiiDecryptError

logger = logging.getLogger(__name__)

REVEAL_PERMISSION = "conversations.reveal_slotvalue"


def slot_reveal(
    *, slot_id: int, user: AbstractUser | AnonymousUser, conversation_id: int | None = None
) -> str:
    """Return a slot's decrypted value and record who saw it; pass conversation_id to scope it.

    Raises:
        RevealNotPermitted: the user lacks the reveal permission (checked before any lookup).
        SlotNotFound: no such slot (in that conversation, when given).
        PersonalDataUnreadable: the value cannot be decrypted; no record is written.
    """
    if not user.is_authenticated or not user.has_perm(REVEAL_PERMISSION):
        logger.warning(
            "personal data reveal refused", extra={"user_id": user.pk, "slot_id": slot_id}
        )
        raise RevealNotPermitted("You are not allowed to reveal personal data.")
    slots = SlotValue.objects.select_related("conversation")
    if conversation_id is not None:
        slots = slots.filter(conversation_id=conversation_id)
    try:
        # The read and its audit record commit together: no reveal without a record.
        with transaction.atomic():
            slot = slots.get(pk=slot_id)  # the field decrypts here, on load
            PersonalDataReveal.objects.create(
                user=user,
                username=user.get_username(),
                conversation_public_id=slot.conversation.public_id,
                slot_name=slot.name,
            )
    except SlotValue.DoesNotExist:
        raise SlotNotFound("This slot does not exist.") from None
    except PiiDecryptError as exc:
        logger.error("personal data reveal failed: cannot decrypt", extra={"slot_id": slot_id})
        raise PersonalDataUnreadable(
            "The value cannot be decrypted: check PII_ENCRYPTION_KEYS (docs/operations.md)."
        ) from exc
    logger.info(
        "personal data revealed",
        extra={
            "user_id": user.pk,
            "conversation_id": str(slot.conversation.public_id),
            "slot": slot.name,
        },
    )
    return str(slot.value)
