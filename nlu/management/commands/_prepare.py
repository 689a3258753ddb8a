"""Shared by prepare_llm and serve_llm: prepare the model with a progress display."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from nlu.localmodel import DEFAULT_MODEL, LocalModelError, prepare_model

# Without a terminal (a log file, docker logs) print a line at most every few seconds.
LOG_INTERVAL_SECONDS = 5.0


class ByteProgress:
    """Callable progress reporter: ``progress(done, total)`` with byte counts."""

    def __init__(self, stream: OutputWrapper, label: str) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        """Show progress, throttled; always show completion once."""
        now = time.monotonic()
        complete = done >= total
        interval = 0.1 if self.tty else LOG_INTERVAL_SECONDS
        if not complete and now - self.last_shown < interval:
            return
        if complete and self.finished:
            return
        self.last_shown = now
        self.finished = complete
        percent = 100 * done / total if total else 100.0
        rate = done / max(now - self.started, 1e-6) / 1e6
        text = (
            f"{self.label}: {done / 1e6:6.0f} / {total / 1e6:.0f} MB"
            f"  {percent:5.1f}%  {rate:5.0f} MB/s"
        )
        if self.tty:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {text}", ending="")
            if complete:
                self.stream.write("")
        else:
            self.stream.write(text)
        self.stream.flush()


def prepare_for_command(command: BaseCommand, model: str | None) -> Path:
    """Join and verify the model for a management command, showing progress on stderr.

    Raises:
        CommandError: the model cannot be served; the message says what to install.
    """
    label = model or ("LLM_MODEL_PATH" if settings.LLM_MODEL_PATH else DEFAULT_MODEL)
    progress = ByteProgress(command.stderr, f"Preparing {label}")
    started = time.monotonic()
    try:
        path = prepare_model(model, progress=progress)
    except LocalModelError as exc:
        raise CommandError(str(exc)) from exc
    command.stderr.write(f"Model ready in {time.monotonic() - started:.1f} s: {path}")
    return path
