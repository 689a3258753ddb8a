"""Errors of the chat domain; the codes are shared by the WebSocket and the API."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError
from nlu.exceptions import EmptyText, TextTooLong


class ConversationNotFound(ApplicationError):
    code = "not_found"
    status = 404


# The text rules live with the NLU (nlu.parse.message_text_check), one rule for every way in.
EmptyMessage = EmptyText
MessageTooLong = TextTooLong


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
