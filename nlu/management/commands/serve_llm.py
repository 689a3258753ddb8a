"""Prepare the local model, then become the OpenAI-compatible llama.cpp server that serves it."""

from __future__ import annotations

import os
import shlex
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from nlu.localmodel import MODELS
from nlu.management.commands._prepare import prepare_for_command

# llama_cpp.server falls back to its only model whatever name a request asks for; the alias just
# makes /v1/models list the name chatsite sends by default (LLM_MODEL).
MODEL_ALIAS = "local"
CONTEXT_TOKENS = 4096


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset/cpusets, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(cores: int) -> tuple[int, int]:
    """(generation, prompt) threads: leave one core to the web server while generating.

    Measured on 2 cores (docs/local-model.md): one generation thread gives the same ~25 tok/s as
    two when the machine is idle, and keeps it when anything else runs, whereas two threads then
    collapse to 4-10 tok/s (llama.cpp's threads spin at every barrier). Prompt processing, in
    short bursts, does gain from every core.
    """
    return max(1, cores - 1), cores


def server_argv(
    *,
    model_path: Path,
    host: str,
    port: int,
    threads: int,
    batch_threads: int,
    chat_format: str | None = None,
) -> list[str]:
    """The llama_cpp.server command line for one model."""
    # Without --chat_format the server uses the chat template stored in the GGUF (ChatML with
    # Qwen's default system prompt for Qwen2.5, ChatML for SmolLM2), which is exactly right. Only a
    # GGUF without a template needs one; the server would otherwise fall back to llama-2's format.
    extra = ["--chat_format", chat_format] if chat_format else []
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(CONTEXT_TOKENS),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(batch_threads),
        # The default (true) ends the reply being streamed whenever another request arrives, so one
        # user's message would silently truncate another user's answer. Queue them instead.
        "--interrupt_requests",
        "false",
        *extra,
    ]


def server_environment() -> dict[str, str]:
    """This environment minus what llama_cpp.server would silently read as its own settings.

    Its settings are pydantic BaseSettings without a prefix, and its __main__ reads HOST and PORT
    directly: scripts/run's PORT=9000 for the web server would move the model server too.
    """
    from llama_cpp.server.settings import Settings

    own = {name.upper() for name in Settings.model_fields} | {"HOST", "PORT", "CONFIG_FILE"}
    return {key: value for key, value in os.environ.items() if key.upper() not in own}


class Command(BaseCommand):
    help = (
        "Join and verify the local model, then exec llama_cpp.server on it (OpenAI-compatible, "
        "/v1/chat/completions with streaming). Ctrl-C stops it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--model",
            choices=sorted(MODELS),
            default=None,
            help="qwen (default) or smollm2; without it LLM_MODEL_PATH is used when set",
        )
        parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 inside a container")
        parser.add_argument("--port", type=int, default=None, help="default: LLM_LOCAL_PORT")
        parser.add_argument(
            "--threads", type=int, default=None, help="generation threads (default: cores - 1)"
        )
        parser.add_argument(
            "--batch-threads", type=int, default=None, help="prompt threads (default: all cores)"
        )
        parser.add_argument(
            "--chat-format",
            default=None,
            help="only for a GGUF without a chat template, e.g. chatml (default: the GGUF's own)",
        )
        parser.add_argument(
            "--print-command", action="store_true", help="print the server command, do not run it"
        )

    def handle(
        self,
        *args: Any,
        model: str | None,
        host: str,
        port: int | None,
        threads: int | None,
        batch_threads: int | None,
        chat_format: str | None,
        print_command: bool,
        **options: Any,
    ) -> None:
        """Prepare the model and replace this process with the model server."""
        path = prepare_for_command(self, model)
        default_generation, default_batch = default_threads(available_cores())
        argv = server_argv(
            model_path=path,
            host=host,
            port=port or settings.LLM_LOCAL_PORT,
            threads=threads or default_generation,
            batch_threads=batch_threads or default_batch,
            chat_format=chat_format,
        )
        if print_command:
            self.stdout.write(shlex.join(argv))
            return
        self.stderr.write(f"Starting: {shlex.join(argv)}")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, server_environment())  # noqa: S606 (fixed argv, no shell)
