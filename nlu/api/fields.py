"""Serializer fields of the NLU API: strict JSON types, query values taken as sent, patterns.

Inputs take JSON types strictly (DRF would turn 12 into "12" and "yes" into true): a client that
sends the wrong type learns it at once, and the schema says exactly what is accepted. Strings
refuse NUL (PostgreSQL cannot store it) and lone surrogates (not UTF-8), as every DRF CharField.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty


class SchemaPattern(RegexValidator):
    """A pattern for the schema only, of a rule DRF's CharField enforces itself (with its own
    messages): generated clients and property-based tests then know it."""

    def __call__(self, value: Any) -> None:
        return None


# Every string: no NUL, which DRF's CharField refuses (PostgreSQL cannot store it). DRF also
# refuses lone surrogates, left out here: without the "u" flag an ECMAScript regex sees an emoji
# as two surrogates. Not blank: something besides whitespace, where Python's strip() (what DRF
# trims with) also removes U+001C-U+001F and U+0085, which ECMAScript's \s does not.
_ANY = r"[^\x00]"
_NOT_SPACE = r"[^\s\x00\x1c-\x1f\x85]"
# "+", not "*": drf-spectacular gives a field that may be blank a oneOf of this pattern and "",
# and "" must match only one of them.
NO_NUL = rf"^{_ANY}+$"
NOT_BLANK = rf"^{_ANY}*{_NOT_SPACE}{_ANY}*$"
# A sensitive word as nlu.moderation.services takes it: stripped, something is left, and no
# control character or line separator inside (around it they are stripped).
_STRIPPED = r"[\s\x1c-\x1f\x85]*"
_CONTROL = r"\x00-\x1f\x7f\u2028\u2029"
ONE_LINE = rf"^{_STRIPPED}[^\s{_CONTROL}\x85]([^{_CONTROL}]*[^\s{_CONTROL}\x85])?{_STRIPPED}$"


class StrictCharField(serializers.CharField):
    """A JSON string, nothing else; its schema says that NUL is refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not any(isinstance(v, RegexValidator) for v in self.validators):
            self.validators.append(SchemaPattern(NO_NUL))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        # The limit counts what was sent, as the schema's maxLength does (DRF would count the
        # value after trimming it, and take 200 spaces around one letter for a short text).
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, nothing else."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else (not 1.0, "1" or true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class QueryValueMixin:
    """A query parameter taken as sent: DRF reads "?category=" as absent (a blank HTML form
    field) and a missing boolean as false (an unticked checkbox); here "" is a value to check."""

    field_name: str

    def get_value(self, dictionary: Any) -> Any:
        return dictionary.get(self.field_name, empty)


class QueryChoiceField(QueryValueMixin, serializers.ChoiceField):
    pass


class QueryBooleanField(QueryValueMixin, serializers.BooleanField):
    """A query-string boolean: exactly "true" or "false"."""

    def to_internal_value(self, data: Any) -> bool:
        if data not in ("true", "false"):
            self.fail("invalid", input=data)
        return data == "true"


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.CHAT_MAX_MESSAGE_CHARS,
        "pattern": NOT_BLANK.replace("\\x", "\\u00"),
        "description": f"What a user said: at most {settings.CHAT_MAX_MESSAGE_CHARS} characters "
        "(else 400 message_too_long), and not only whitespace (else 400 empty_message).",
    }
)
class UserTextField(StrictCharField):
    """What a user said (a chat message, a text to parse). Its emptiness and length are the
    service's rule (nlu.parse.message_text_check), with the chat's codes, not this field's."""

    def run_validation(self, data: Any = empty) -> Any:
        # "" goes on to the service, which answers empty_message (DRF would say "blank").
        if data == "":
            return data
        return super().run_validation(data)
