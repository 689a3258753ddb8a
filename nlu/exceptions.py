"""Errors of the language layer."""

from __future__ import annotations

from chatsite.exceptions import TransientError


class LlmUnavailable(TransientError):
    """The model endpoint refused, failed or could not be reached."""

    code = "llm_unavailable"


class LlmTimeout(LlmUnavailable):
    """No first token, or no next token, within the time limit."""

    code = "llm_timeout"
