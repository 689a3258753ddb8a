"""Re-encrypt EncryptedTextField columns under the newest key (MultiFernet.rotate), in batches.

Resumable without bookkeeping: rows are walked in primary-key order, one transaction per batch,
and a token that the newest key alone already opens is skipped. A run killed half-way leaves
committed batches under the new key and the rest under old keys (all readable, since every key
still decrypts); running again writes only the rows that still need it. A progress table would
save the skip check's decrypt, but it can go stale (rows written by the app meanwhile, keys
changed between runs); checking the token itself is always right.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.db import models, transaction
from django.db.models import Case, ExpressionWrapper, F, Value, When

from conversations import pii
from conversations.fields import EncryptedTextField


@dataclass
class RotationProgress:
    """Counts so far for one model; passed to the progress callback after each batch commits."""

    model: str
    rows: int = 0  # rows examined
    rotated: int = 0  # values re-encrypted (a row with two fields may count twice)
    skipped: int = 0  # values already under the newest key, or NULL
    last_pk: object = None
    started: float = field(default_factory=time.monotonic)

    @property
    def rows_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.rows / elapsed if elapsed > 0 else 0.0


ProgressCallback = Callable[[RotationProgress], None]


def encrypted_fields() -> dict[type[models.Model], list[str]]:
    """Every installed model that has EncryptedTextFields, with those fields' names."""
    found: dict[type[models.Model], list[str]] = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found[model] = names
    return found


def pii_rotate(
    *,
    model: type[models.Model],
    field_names: Sequence[str],
    batch_size: int = 500,
    progress_cb: ProgressCallback | None = None,
) -> RotationProgress:
    """Rotate every value of the given fields to the newest key; returns the final counts."""
    multi = pii.fernet()
    newest = pii.primary_fernet()
    progress = RotationProgress(model=model._meta.label)
    # Read the raw tokens: a plain TextField output skips EncryptedTextField.from_db_value.
    raw = {
        f"_raw_{n}": ExpressionWrapper(F(n), output_field=models.TextField()) for n in field_names
    }
    while True:
        with transaction.atomic():
            rows = model._default_manager.order_by("pk")
            if progress.last_pk is not None:
                rows = rows.filter(pk__gt=progress.last_pk)
            # Locked until the batch commits, so an app write between read and write is not lost.
            batch = list(
                rows.select_for_update().annotate(**raw).values_list("pk", *raw)[:batch_size]
            )
            if not batch:
                return progress
            for index, name in enumerate(field_names, start=1):
                updates: list[When] = []
                pks: list[object] = []
                for row in batch:
                    token = row[index]
                    if token is None or _is_newest(newest, token):
                        progress.skipped += 1
                        continue
                    rotated = multi.rotate(token.encode("ascii")).decode("ascii")
                    updates.append(When(pk=row[0], then=Value(rotated)))
                    pks.append(row[0])
                if updates:
                    # Value(...) with a plain TextField is written as is: get_prep_value would
                    # encrypt the token a second time.
                    model._default_manager.filter(pk__in=pks).update(
                        **{name: Case(*updates, output_field=models.TextField())}
                    )
                    progress.rotated += len(updates)
            progress.rows += len(batch)
            progress.last_pk = batch[-1][0]
        if progress_cb is not None:
            progress_cb(progress)


def _is_newest(newest: Fernet, token: str) -> bool:
    try:
        newest.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True
