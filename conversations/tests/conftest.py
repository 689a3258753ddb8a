"""Browser-test fixtures: a real daphne server on the test database, and Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from testkit.processes import child_env, free_port
from testkit.scripted_llm import ScriptedLlm

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BASE_DIR = Path(settings.BASE_DIR)
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@dataclass
class DaphneServer:
    """A daphne subprocess serving chatsite.asgi:application."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_healthy(server: DaphneServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"daphne did not answer /healthz within {timeout} s:\n{server.log()}")


@pytest.fixture
def daphne_server(transactional_db: None, scripted_llm: ScriptedLlm) -> Iterator[DaphneServer]:
    """daphne in a subprocess on the test database, talking to the scripted LLM server.

    Function-scoped on purpose: it must stop before pytest-django flushes (and at the end drops)
    the test database, which PostgreSQL refuses while another process is connected.
    """
    port = free_port()
    env = child_env(
        LLM_BASE_URL=scripted_llm.base_url,
        LLM_MODEL="scripted",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.pop(ASYNC_UNSAFE, None)  # the server is async for real; only the test process needs it
    log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["chatsite.asgi:application"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = DaphneServer(url=f"http://127.0.0.1:{port}", process=process, log_path=Path(log.name))
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        Path(log.name).unlink(missing_ok=True)


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright's sync API, with these flags added."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps its own event loop running on this thread, so Django would
    # refuse the (truly synchronous) ORM calls of the test and of the database flush after it.
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (sync API: the tests are plain functions)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh browser context (own cookies); uncaught script errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
