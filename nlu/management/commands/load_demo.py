"""Load the demo domain (set meals: greeting, goodbye, order_meal, check_order, out_of_scope)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from nlu.services import domain_load

DEMO_DOMAIN = Path(__file__).resolve().parents[2] / "demo" / "domain.json"


class Command(BaseCommand):
    help = (
        "Create or update the demo intents and slots by name (safe to run again: staff edits to "
        "other intents and extra slots are kept)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--file", type=Path, default=DEMO_DOMAIN, help="a domain JSON file (default: the demo)"
        )
        parser.add_argument(
            "--only-new",
            action="store_true",
            help="create missing intents only; leave existing ones as staff edited them "
            "(scripts/run uses this, so a restart never reverts the admin's changes)",
        )

    def handle(self, *args: Any, file: Path, only_new: bool, **options: Any) -> None:
        """Load the file through services.domain_load and print one line per row."""
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            report = domain_load(intents=data["intents"], update_existing=not only_new)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"{file}: {exc}") from exc
        except ValidationError as exc:
            raise CommandError(f"{file}: {'; '.join(exc.messages)}") from exc
        for name, outcome in report:
            if outcome in ("created", "updated"):
                self.stdout.write(f"{outcome}: {name}")
        counts = {
            o: sum(1 for _, x in report if x == o)
            for o in ("created", "updated", "unchanged", "kept")
        }
        self.stdout.write(
            self.style.SUCCESS(
                "Domain: {created} created, {updated} updated, {unchanged} unchanged, "
                "{kept} kept as they were".format(**counts)
            )
        )
