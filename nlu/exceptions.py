"""Errors of the language layer."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError, TransientError


class LlmUnavailable(TransientError):
    """The model endpoint refused, failed or could not be reached."""

    code = "llm_unavailable"


class LlmTimeout(LlmUnavailable):
    """No first token, or no next token, within the time limit."""

    code = "llm_timeout"


class TemplateSlotMissing(ApplicationError):
    """A template reply was rendered without the value of a required slot it uses."""

    code = "template_slot_missing"
    # The dialogue should have asked for the slot first: a bug on our side, not the user's.
    status = 500


class TemplateMissing(ApplicationError):
    """The intent has no response template in the requested language."""

    code = "template_missing"
    status = 500
