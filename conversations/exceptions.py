"""Errors of the chat domain; the codes are shared by the WebSocket and the API."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError


class ConversationNotFound(ApplicationError):
    code = "not_found"
    status = 404


class EmptyMessage(ApplicationError):
    code = "empty_message"


class MessageTooLong(ApplicationError):
    code = "message_too_long"
    status = 413


class TurnInProgress(ApplicationError):
    """Another reply in this conversation is still being generated."""

    code = "turn_in_progress"
    status = 409


class IllegalTransition(ApplicationError):
    code = "illegal_transition"
    status = 409


class RevealNotPermitted(ApplicationError):
    """The user lacks ``conversations.reveal_slotvalue``: decrypted personal data stays hidden."""

    code = "permission_denied"
    status = 403


class SlotNotFound(ApplicationError):
    code = "slot_not_found"
    status = 404


class PersonalDataUnreadable(ApplicationError):
    """A stored personal value cannot be decrypted (wrong or missing key): nothing is revealed."""

    code = "pii_decrypt_failed"
    status = 500
