"""The baseline for bench/ws_stream.py: the least any WebSocket relay of an LLM stream must do.

A bare `websockets` server (no Django, no database, no Redis, no coalescing): on each
`message.send` it streams the model's reply through the same `openai` client the product uses
(`max_retries=0`, system + user prompt) and sends every text piece as soon as it arrives, one
`message.delta` frame per token in the product's frame shape, then a `message.done`. Whatever the
product does on top of this (sessions, the database, the resumable log, the relay between
processes) is what bench/ws_stream.py measures against it.

    python bench/bare_relay.py --port 8102 --llm http://127.0.0.1:8101/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import openai
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def _encode(frame: dict[str, object]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class Relay:
    """One OpenAI client for the whole process (as in nlu.llm), one task per socket."""

    def __init__(self, llm_url: str, model: str) -> None:
        self.model = model
        self.client = openai.AsyncOpenAI(
            base_url=llm_url,
            api_key="not-needed",
            max_retries=0,
            timeout=openai.Timeout(60.0, connect=3.0),
        )

    async def handle(self, ws: ServerConnection) -> None:
        """Answer every message.send on the socket with the model's streamed reply."""
        await ws.send(_encode({"type": "hello", "protocol": 1}))
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "message.send":
                    await self._reply(ws, str(frame.get("text", "")))
        except ConnectionClosed:
            pass

    async def _reply(self, ws: ServerConnection, text: str) -> None:
        received = time.monotonic()
        message_id = str(uuid.uuid4())
        seq = 0
        ttft_ms = None
        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": text},
            ],
            stream=True,
            max_tokens=512,
        )
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                content = chunk.choices[0].delta.content
                if not content:
                    continue
                seq += 1
                if ttft_ms is None:
                    ttft_ms = int((time.monotonic() - received) * 1000)
                await ws.send(
                    _encode(
                        {
                            "type": "message.delta",
                            "message_id": message_id,
                            "seq": seq,
                            "tokens": [content],
                        }
                    )
                )
        finally:
            await stream.close()
        await ws.send(
            _encode(
                {
                    "type": "message.done",
                    "message_id": message_id,
                    "last_seq": seq,
                    "status": "complete",
                    "error_code": "",
                    "is_fallback": False,
                    "ttft_ms": ttft_ms,
                    "total_ms": int((time.monotonic() - received) * 1000),
                    "token_count": seq,
                }
            )
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm", required=True, help="OpenAI-compatible base URL")
    parser.add_argument("--model", default="scripted")
    args = parser.parse_args()
    relay = Relay(args.llm, args.model)
    # No compression (the bench client does not offer it, nor does daphne accept it).
    async with serve(
        relay.handle, args.host, args.port, compression=None, backlog=2048, max_queue=None
    ) as server:
        print(f"bare relay on ws://{args.host}:{args.port}/", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
