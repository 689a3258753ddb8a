"""EncryptedTextField: a TextField whose column holds a Fernet token, never the plaintext."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models

from conversations import pii


class EncryptedTextField(models.TextField):
    """Encrypts on save (get_prep_value) and decrypts on load (from_db_value).

    Decrypting on load, not lazily on attribute access, is the simplest robust choice: a wrong
    key fails at the query that loads the row (PiiDecryptError), not somewhere later, and the
    attribute is always a plain ``str``. Fernet tokens are random per write, so equality, ordering
    and text lookups on the column mean nothing: only ``isnull`` is allowed. Search by a separate
    ``pii.blind_index`` column instead.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else pii.decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        return None if value is None else pii.encrypt(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(self._no_lookup_message(lookup_name))

    def get_transform(self, lookup_name: str) -> Any:
        raise FieldError(self._no_lookup_message(lookup_name))

    def _no_lookup_message(self, lookup_name: str) -> str:
        where = f"{self.model.__name__}.{self.name}" if hasattr(self, "model") else self.name
        return (
            f"{where} is encrypted: the {lookup_name!r} lookup cannot work on ciphertext; only "
            "isnull is allowed. Filter on a blind-index column (conversations.pii.blind_index)."
        )
