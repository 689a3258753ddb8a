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


class ImportFileInvalid(ApplicationError):
    """An uploaded examples file cannot be read (encoding, syntax, size, unknown format)."""

    code = "import_file_invalid"
    status = 400


class ReviewItemResolved(ApplicationError):
    """The review item was already accepted, corrected or dismissed (by someone else, perhaps)."""

    code = "review_item_resolved"
    status = 409


class ReviewNoSuggestion(ApplicationError):
    """Accepting needs the LLM's label, and this item has none: correct it instead."""

    code = "review_no_suggestion"
    status = 400


class ReviewIntentMissing(ApplicationError):
    """The suggested intent no longer exists (renamed or deleted)."""

    code = "review_intent_missing"
    status = 400


class TrainingDataInvalid(ApplicationError):
    """The examples cannot train a classifier: fewer than two intents, or an intent with fewer
    than two examples (cross-validation and the classifier both need two)."""

    code = "training_data_invalid"
    status = 400


class ContentBlocked(ApplicationError):
    """The text contains a word staff listed with the block action; it is not processed."""

    code = "content_blocked"
    status = 400


class EmptyText(ApplicationError):
    """Nothing but whitespace to parse (the chat's code for an empty message)."""

    code = "empty_message"


class TextTooLong(ApplicationError):
    """Longer than a chat message may be (CHAT_MAX_MESSAGE_CHARS; the chat's code)."""

    # 400, not 413: the request is fine, one field of it is not (413 is request_too_large).
    code = "message_too_long"


class IntentNotFound(ApplicationError):
    code = "intent_not_found"
    status = 404


class IntentExists(ApplicationError):
    """Another intent has this name already."""

    code = "intent_exists"
    status = 409


class IntentExampleNotFound(ApplicationError):
    code = "intent_example_not_found"
    status = 404


class SensitiveWordNotFound(ApplicationError):
    code = "sensitive_word_not_found"
    status = 404


class SensitiveWordExists(ApplicationError):
    """The word (or a spelling that normalises the same) is listed in its category already."""

    code = "sensitive_word_exists"
    status = 409


class NluModelNotFound(ApplicationError):
    code = "nlu_model_not_found"
    status = 404
