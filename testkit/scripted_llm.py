"""A scripted OpenAI-compatible chat server on loopback, for tests and benchmarks.

It speaks the real wire protocol (HTTP/1.1, keep-alive, chunked Server-Sent Events, the
`chat.completion.chunk` shape), so the product's `openai` client is exercised for real; only the
words are scripted. Run it in a background thread with `ScriptedLlm().start()`, or from the shell:
`python -m testkit.scripted_llm --port 8011 --tokens 100`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Script:
    """What the next replies look like."""

    tokens: list[str] = field(default_factory=lambda: [f"tok{i} " for i in range(20)])
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    status: int = 200  # anything else: an error response instead of a stream
    hang_after: int | None = None  # stop sending (but keep the connection open) after N tokens

    @classmethod
    def words(cls, text: str, **kwargs: object) -> Script:
        """One token per word (spaces kept), e.g. Script.words("Hello there")."""
        parts = text.split(" ")
        tokens = [p + " " for p in parts[:-1]] + [parts[-1]]
        return cls(tokens=[t for t in tokens if t], **kwargs)  # type: ignore[arg-type]


class ScriptedLlm:
    """The server; `script` may be replaced at any time, `requests` records what was asked.

    `responder`, when set, picks the script per request (e.g. intent labels for the classifier's
    prompt, a reply otherwise); returning None falls back to `script`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.script = Script()
        self.responder: Callable[[dict[str, Any]], Script | None] | None = None
        self.requests: list[dict[str, object]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> ScriptedLlm:
        """Serve in a daemon thread; returns once listening."""
        self._thread = threading.Thread(target=self._serve_forever, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """Close every connection and the loop's thread."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve_forever(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.serve())
        self._ready.set()
        self._loop.run_forever()

    async def serve(self) -> asyncio.Server:
        """Start listening on the current loop."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self._server

    # --- HTTP ---------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                if method == "GET" and path.rstrip("/").endswith("/models"):
                    await self._json(
                        writer,
                        200,
                        {"object": "list", "data": [{"id": "scripted", "object": "model"}]},
                    )
                elif method == "POST" and path.rstrip("/").endswith("/chat/completions"):
                    request = json.loads(body or b"{}")
                    self.requests.append(request)
                    script = self.responder(request) if self.responder else None
                    await self._chat(writer, request, script or self.script)
                else:
                    await self._json(writer, 404, {"error": {"message": "not found"}})
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _chat(self, writer: asyncio.StreamWriter, request: dict, script: Script) -> None:
        if script.status != 200:
            await self._json(writer, script.status, {"error": {"message": "scripted failure"}})
            return
        if not request.get("stream"):
            text = "".join(script.tokens)
            await self._json(writer, 200, _completion(text))
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n"
        )
        await writer.drain()
        created = int(time.time())
        if script.first_token_delay:
            await asyncio.sleep(script.first_token_delay)
        _chunk(writer, _delta({"role": "assistant", "content": ""}, created))
        for index, token in enumerate(script.tokens):
            if script.hang_after is not None and index >= script.hang_after:
                await writer.drain()
                await asyncio.sleep(3600)
            if index and script.token_delay:
                await asyncio.sleep(script.token_delay)
            _chunk(writer, _delta({"content": token}, created))
            await writer.drain()
        _chunk(writer, _delta({}, created, finish="stop"))
        writer.write(_event(b"[DONE]") + b"0\r\n\r\n")
        await writer.drain()


def _delta(delta: dict, created: int, finish: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": created,
            "model": "scripted",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        },
        ensure_ascii=False,
    ).encode()


def _event(payload: bytes) -> bytes:
    data = b"data: " + payload + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _chunk(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(_event(payload))


def _completion(text: str) -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--token-delay", type=float, default=0.0)
    args = parser.parse_args()
    server = ScriptedLlm(args.host, args.port)
    server.script = Script(
        tokens=[f"t{i} " for i in range(args.tokens)], token_delay=args.token_delay
    )

    async def run() -> None:
        await server.serve()
        print(f"scripted LLM on {server.base_url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
