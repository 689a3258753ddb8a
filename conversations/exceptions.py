"""Errors of the chat domain; the codes are shared by the WebSocket and the API."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError


class ConversationNotFound(ApplicationError):
    code = "not_found"
    status = 404


class EmptyMessage(ApplicationError):
    code = "empty_message"


class MessageTooLong(ApplicationError):
    # 400, not 413: the request is fine, one field of it is not (413 is request_too_large).
    code = "message_too_long"
    status = 400


class TurnInProgress(ApplicationError):
    """Another reply in this conversation is still being generated."""

    code = "turn_in_progress"
    status = 409


class ConversationClosed(ApplicationError):
    code = "conversation_closed"
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
