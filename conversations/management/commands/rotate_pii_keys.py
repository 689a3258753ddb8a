"""manage.py rotate_pii_keys: re-encrypt personal data under the first PII_ENCRYPTION_KEYS key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conversations.pii_rotation import RotationProgress, encrypted_fields, pii_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every EncryptedTextField value under the newest key (the first of "
        "PII_ENCRYPTION_KEYS). Safe to stop and run again: finished rows are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction")

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        """Rotate every model that has encrypted fields, reporting rows per second."""
        found = encrypted_fields()
        if not found:
            self.stdout.write("No model has an EncryptedTextField: nothing to rotate.")
            return
        for model, names in found.items():
            result = pii_rotate(
                model=model, field_names=names, batch_size=batch_size, progress_cb=self._report
            )
            self.stdout.write(
                self.style.SUCCESS(
                    f"{result.model} ({', '.join(names)}): {result.rows} rows, "
                    f"{result.rotated} values rotated, {result.skipped} already current or empty, "
                    f"{result.rows_per_second:.0f} rows/s"
                )
            )

    def _report(self, progress: RotationProgress) -> None:
        self.stdout.write(
            f"  {progress.model}: {progress.rows} rows (up to pk {progress.last_pk}), "
            f"{progress.rows_per_second:.0f} rows/s"
        )
