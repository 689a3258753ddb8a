"""Seed the sensitive words from the public lists the installed packages ship (LDNOOBW, ...)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from chatsite.exceptions import ApplicationError
from nlu.models import SensitiveWordAction, SensitiveWordCategory
from nlu.moderation.seeds import DEFAULT_SOURCES, seed_sources
from nlu.moderation.services import sensitive_words_seed

MAX_ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Add the words of public lists (default: LDNOOBW English and Chinese, better-profanity). "
        "Safe to run again: words already listed are left as staff edited them. Attribution and "
        "licences: docs/moderation.md."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--source",
            default=",".join(DEFAULT_SOURCES),
            help="comma-separated lists (default: %(default)s); --list shows those on offer",
        )
        parser.add_argument(
            "--action",
            choices=SensitiveWordAction.values,
            default=SensitiveWordAction.MASK,
            help="what the new words do (default: %(default)s)",
        )
        parser.add_argument(
            "--category",
            choices=SensitiveWordCategory.values,
            default=SensitiveWordCategory.ABUSE,
            help="the new words' category (default: %(default)s)",
        )
        parser.add_argument("--dry-run", action="store_true", help="report only; write nothing")
        parser.add_argument(
            "--list",
            action="store_true",
            dest="show_lists",
            help="show the lists on offer with their licences",
        )

    def handle(
        self,
        *args: Any,
        source: str,
        action: str,
        category: str,
        dry_run: bool,
        show_lists: bool,
        **options: Any,
    ) -> None:
        """Seed through services.sensitive_words_seed and print what it did."""
        if show_lists:
            for key, info in seed_sources().items():
                self.stdout.write(
                    f"{key}\t{info.language}\t{info.licence}\t{info.name}\t{info.url}"
                )
            return
        keys = [part.strip() for part in source.split(",") if part.strip()]
        if not keys:
            raise CommandError("Name at least one list with --source.")
        try:
            report = sensitive_words_seed(
                sources=keys, action=action, category=category, dry_run=dry_run
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        for error in report.errors[:MAX_ERRORS_SHOWN]:
            self.stderr.write(f"skipped {error.text!r}: {error.message} [{error.code}]")
        if len(report.errors) > MAX_ERRORS_SHOWN:
            self.stderr.write(f"... and {len(report.errors) - MAX_ERRORS_SHOWN} more")
        verb = "would add" if dry_run else "added"
        self.stdout.write(
            self.style.SUCCESS(
                f"Sensitive words from {', '.join(keys)}: {verb} {report.created}, "
                f"{report.skipped} already listed (or in two lists), {len(report.errors)} unusable."
            )
        )
