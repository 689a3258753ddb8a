"""Streaming benchmark: N concurrent chat sockets against the product and against a bare relay.

    .venv/bin/python bench/ws_stream.py                      # N = 1,50,200,500, both scenarios
    .venv/bin/python bench/ws_stream.py --n 200 --repeat 3 --scenario single

Everything runs on loopback and is started and stopped here: the scripted LLM
(testkit.scripted_llm, no delay between tokens), the bare relay (bench/bare_relay.py: a
`websockets` server that relays the same stream through the same `openai` client and does nothing
else), and two daphne processes serving chatsite.asgi with Redis as channel layer and stream relay
and PostgreSQL (a `chatsite_bench` database, created and migrated here) or DATABASE_URL.

Per phase, N clients (asyncio + `websockets`, in this process) each own a fresh conversation, wait
until every socket is open, then send one message at the same moment and read the reply:

* TTFT: from the client's send to the first `message.delta` on its socket.
* tokens/s: every token received / (last `message.done` - first send).
* errors: a socket that failed to open, an `error` frame, a reply that did not end `complete`
  with 100 tokens, a timeout. lost / dup / disorder: per-token sequence numbers (frame seq + i)
  checked against 1..tokens; text: a token whose text is not the scripted one.
* scenario `second`: every conversation also has a socket on the second daphne process (as
  another tab served by another process); per token, the arrival time there minus on the first.

Results go to stdout (a table) and bench/results/ws_stream-<time>.json. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import signal
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

ORIGIN = "http://localhost"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_URL = "postgres://postgres@127.0.0.1:5432/chatsite_bench"


# --- Processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_command(names: tuple[str, ...] = ("postgres", "redis-server")) -> dict[str, float]:
    """CPU seconds of every process with one of these command names, keyed "name/pid" (shared
    servers: this includes whatever else uses them), and of the whole machine ("machine")."""
    totals: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        command = head.partition("(")[2]
        if command in names:
            fields = rest.split()
            totals[f"{command}/{stat.parent.name}"] = (int(fields[11]) + int(fields[12])) / tick
    busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in busy[:8])
    totals["machine"] = (user + nice + system + irq + softirq + steal) / tick
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU used between two snapshots; "name/pid" entries summed per name (processes that
    started or ended in between are left out)."""
    used: dict[str, float] = {}
    for key, value in after.items():
        if key in before:
            name = key.split("/")[0]
            used[name] = used.get(name, 0.0) + value - before[key]
    return {k: round(v, 2) for k, v in used.items()}


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    log: Path


class Processes:
    """The servers this run started; all stopped at the end, whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    async def start(self, name: str, args: list[str], env: dict[str, str], port: int) -> Proc:
        log = self.log_dir / f"{name}.log"
        handle = log.open("wb")
        process = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
        handle.close()
        proc = Proc(name, process, log)
        self.procs.append(proc)
        await wait_listening(proc, port)
        return proc

    def cpu(self) -> dict[str, float]:
        return {p.name: cpu_seconds(p.process.pid) for p in self.procs} | cpu_by_command()

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.process.returncode is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.process.wait(), 10)
            except TimeoutError:
                proc.process.kill()
                await proc.process.wait()


async def wait_listening(proc: Proc, port: int, timeout: float = 60.0) -> None:
    """Until the port answers an HTTP request (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.returncode is not None:
            raise RuntimeError(f"{proc.name} exited; see {proc.log}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            return
        except (OSError, TimeoutError):
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not listen on {port}; see {proc.log}")


# --- Database -----------------------------------------------------------------------------------


def choose_database() -> tuple[str, bool]:
    """DATABASE_URL if given, else a bench database on the local PostgreSQL, else SQLite.

    The flag says whether the database is the bench's own (and may be emptied).
    """
    given = os.environ.get("DATABASE_URL")
    if given:
        return given, False
    try:
        import psycopg

        with psycopg.connect(
            PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=3
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'chatsite_bench'"
            ).fetchone()
            if not exists:
                conn.execute("CREATE DATABASE chatsite_bench")
        return PG_BENCH_URL, True
    except Exception as exc:  # no PostgreSQL: SQLite works for small N only
        print(f"PostgreSQL not reachable ({type(exc).__name__}); using SQLite", file=sys.stderr)
        return f"sqlite:///{RESULTS / 'bench.sqlite3'}", True


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, with the servers' settings, to create sessions and conversations."""
    os.environ.update(env)
    import django

    django.setup()


def db_reset() -> None:
    """Empty the bench's own database of earlier runs' chats and sessions."""
    from django.contrib.sessions.models import Session
    from django.db import connections

    from conversations.models import Conversation

    Conversation.objects.all().delete()
    Session.objects.all().delete()
    connections.close_all()


def db_make_conversations(n: int) -> list[tuple[str, str]]:
    """N anonymous sessions, each owning one empty conversation: (session key, conversation id)."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import connections, transaction
    from django.utils.crypto import get_random_string

    from conversations.models import Conversation

    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    expires = datetime.now(UTC) + timedelta(days=1)
    data = SessionStore().encode({})
    keys = [get_random_string(32, chars) for _ in range(n)]
    with transaction.atomic():
        Session.objects.bulk_create(
            [Session(session_key=k, session_data=data, expire_date=expires) for k in keys]
        )
        conversations = Conversation.objects.bulk_create(
            [Conversation(session_key=k) for k in keys]
        )
    connections.close_all()
    return [(k, str(c.public_id)) for k, c in zip(keys, conversations, strict=True)]


def db_count_stored(conversation_ids: list[str], tokens: int) -> int:
    """How many of the conversations have their reply stored complete with every token."""
    from django.db import connections

    from conversations.models import Message

    count = Message.objects.filter(
        conversation__public_id__in=conversation_ids,
        role="assistant",
        status="complete",
        token_count=tokens,
    ).count()
    connections.close_all()
    return count


# --- Clients ------------------------------------------------------------------------------------


@dataclass
class SocketLog:
    """What one socket received of the reply."""

    arrivals: dict[int, float] = field(default_factory=dict)  # seq -> first arrival
    first_delta: float | None = None
    last_seq: int = 0
    frames: int = 0
    dup: int = 0
    disorder: int = 0
    wrong_text: int = 0
    done: dict[str, Any] | None = None
    done_at: float | None = None
    ack_at: float | None = None  # the product's message.ack: the turn is stored
    error: str | None = None


@dataclass
class Client:
    session_key: str
    conversation_id: str
    ws1: ClientConnection | None = None
    ws2: ClientConnection | None = None
    sent_at: float | None = None
    log1: SocketLog = field(default_factory=SocketLog)
    log2: SocketLog = field(default_factory=SocketLog)
    error: str | None = None


async def open_socket(url: str, session_key: str, limit: asyncio.Semaphore) -> ClientConnection:
    async with limit:
        ws = await connect(
            url,
            origin=ORIGIN,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={session_key}"},
            compression=None,
            proxy=None,
            open_timeout=60,
            max_queue=None,
            ping_interval=None,
        )
        hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if hello.get("type") != "hello":
            raise RuntimeError(f"expected hello, got {hello.get('type')}")
        return ws


async def read_reply(ws: ClientConnection, log: SocketLog, tokens: int) -> None:
    """Record every token of the reply until message.done (or an error frame)."""
    while True:
        raw = await ws.recv()
        now = time.perf_counter()
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "message.delta":
            log.frames += 1
            if log.first_delta is None:
                log.first_delta = now
            seq = frame["seq"]
            for i, token in enumerate(frame["tokens"]):
                s = seq + i
                if s in log.arrivals:
                    log.dup += 1
                    continue
                if s < log.last_seq:
                    log.disorder += 1
                log.last_seq = max(log.last_seq, s)
                log.arrivals[s] = now
                if token != f"t{s - 1} ":
                    log.wrong_text += 1
        elif kind == "message.ack":
            log.ack_at = now
        elif kind == "message.done":
            log.done, log.done_at = frame, now
            if frame.get("status") != "complete" or frame.get("is_fallback"):
                log.error = f"done:{frame.get('status')}:{frame.get('error_code')}"
            elif frame.get("last_seq") != tokens:
                log.error = f"done:last_seq={frame.get('last_seq')}"
            return
        elif kind == "error":
            log.error = f"error:{frame.get('code')}"
            return


async def run_client(client: Client, tokens: int) -> None:
    assert client.ws1 is not None
    client.sent_at = time.perf_counter()
    await client.ws1.send(
        json.dumps({"type": "message.send", "text": "hello", "client_id": str(uuid.uuid4())})
    )
    readers = [read_reply(client.ws1, client.log1, tokens)]
    if client.ws2 is not None:
        readers.append(read_reply(client.ws2, client.log2, tokens))
    await asyncio.gather(*readers)


async def close_all(clients: list[Client]) -> None:
    async def close(ws: ClientConnection | None) -> None:
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 10)
            except Exception:  # noqa: S110 - closing is best effort
                pass

    await asyncio.gather(*(close(c.ws1) for c in clients), *(close(c.ws2) for c in clients))


async def start_spies(
    processes: Processes, names: list[str], out: Path, label: str
) -> list[asyncio.subprocess.Process]:
    """py-spy on the named servers (collapsed stacks, GIL-holding samples only)."""
    spy = Path(PYTHON).with_name("py-spy")
    spies = []
    for proc in processes.procs:
        if proc.name in names:
            spies.append(
                await asyncio.create_subprocess_exec(
                    str(spy),
                    "record",
                    "-p",
                    str(proc.process.pid),
                    "-f",
                    "raw",
                    "-g",
                    "-r",
                    "200",
                    "-o",
                    str(out / f"{label}-{proc.name}.txt"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
    await asyncio.sleep(0.5)  # attached
    return spies


async def stop_spies(spies: list[asyncio.subprocess.Process]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        await asyncio.wait_for(spy.wait(), 30)


# --- Phases -------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[index]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


@dataclass
class Target:
    name: str  # "bare" or "product"
    url1: str  # ws://host:port/ws/conversations/ (conversation id appended)
    url2: str | None = None  # the second daphne (scenario second)


async def run_phase(
    *,
    target: Target,
    scenario: str,
    n: int,
    tokens: int,
    reply_timeout: float,
    processes: Processes,
    bench_pid: int,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Connect N clients (and their second sockets), send at once, read every reply."""
    if target.name == "product":
        pairs = await asyncio.to_thread(db_make_conversations, n)
    else:
        pairs = [("-", str(uuid.uuid4())) for _ in range(n)]
    clients = [Client(k, c) for k, c in pairs]
    limit = asyncio.Semaphore(32)  # daphne listens with Twisted's default backlog of 50

    async def open_client(client: Client) -> None:
        try:
            client.ws1 = await open_socket(
                f"{target.url1}{client.conversation_id}/", client.session_key, limit
            )
            if scenario == "second":
                assert target.url2 is not None
                client.ws2 = await open_socket(
                    f"{target.url2}{client.conversation_id}/", client.session_key, limit
                )
        except Exception as exc:
            client.error = f"connect:{type(exc).__name__}"

    connect_started = time.perf_counter()
    await asyncio.gather(*(open_client(c) for c in clients))
    connect_s = time.perf_counter() - connect_started
    ready = [c for c in clients if c.error is None]

    cpu_before = {**processes.cpu(), "bench": cpu_seconds(bench_pid)}
    spies = []
    if profile_dir is not None:
        names = ["bare"] if target.name == "bare" else ["daphne1", "daphne2"]
        spies = await start_spies(processes, names, profile_dir, f"{scenario}-{target.name}-{n}")

    async def one(client: Client) -> None:
        try:
            async with asyncio.timeout(reply_timeout):
                await run_client(client, tokens)
        except TimeoutError:
            client.error = "timeout"
        except Exception as exc:
            client.error = f"{type(exc).__name__}"

    await asyncio.gather(*(one(c) for c in ready))
    await stop_spies(spies)
    cpu_after = {**processes.cpu(), "bench": cpu_seconds(bench_pid)}
    await close_all(clients)

    stored = None
    if target.name == "product":
        stored = await asyncio.to_thread(
            db_count_stored, [c.conversation_id for c in clients], tokens
        )
    result = summarise(clients, tokens=tokens, second=scenario == "second")
    result.update(
        target=target.name,
        scenario=scenario,
        n=n,
        connect_s=round(connect_s, 2),
        stored_complete=stored,
        cpu_s=cpu_delta(cpu_before, cpu_after),
    )
    # CPU the relay itself used per token delivered: steadier than wall time on a shared machine.
    relay = ["bare"] if target.name == "bare" else ["daphne1", "daphne2"]
    relay_cpu = sum(result["cpu_s"].get(k, 0.0) for k in relay)
    result["server_cpu_us_per_token"] = (
        round(relay_cpu / result["tokens_received"] * 1e6) if result["tokens_received"] else None
    )
    await asyncio.sleep(1.0)  # let the servers finish closing the sockets
    return result


def summarise(clients: list[Client], *, tokens: int, second: bool) -> dict[str, Any]:
    sent = [c.sent_at for c in clients if c.sent_at is not None]
    ends = [c.log1.done_at for c in clients if c.log1.done_at is not None]
    received = sum(len(c.log1.arrivals) for c in clients)
    wall = (max(ends) - min(sent)) if sent and ends else None
    ttfts = [
        c.log1.first_delta - c.sent_at
        for c in clients
        if c.log1.first_delta is not None and c.sent_at is not None
    ]
    error_kinds: dict[str, int] = {}

    def count_error(kind: str) -> None:
        error_kinds[kind] = error_kinds.get(kind, 0) + 1

    errors = 0
    for c in clients:
        kinds = [k for k in (c.error, c.log1.error, c.log2.error if second else None) if k]
        if c.log1.done is None and not kinds:
            kinds.append("no_done")
        if second and c.log2.done is None and not kinds:
            kinds.append("no_done_second")
        if kinds:
            errors += 1
            for kind in kinds:
                count_error(kind)

    def integrity(logs: list[SocketLog]) -> dict[str, int]:
        return {
            "lost": sum(
                sum(1 for s in range(1, tokens + 1) if s not in log.arrivals) for log in logs
            ),
            "dup": sum(log.dup for log in logs),
            "disorder": sum(log.disorder for log in logs),
            "wrong_text": sum(log.wrong_text for log in logs),
        }

    result: dict[str, Any] = {
        "clients": len(clients),
        "wall_s": None if wall is None else round(wall, 3),
        "tokens_received": received,
        "tokens_per_s": None if not wall else round(received / wall, 1),
        "frames_per_reply": round(
            statistics.mean([c.log1.frames for c in clients if c.log1.frames] or [0]), 1
        ),
        "ttft_ms": {
            "p50": ms(pct(ttfts, 50)),
            "p99": ms(pct(ttfts, 99)),
            "max": ms(max(ttfts) if ttfts else None),
        },
        "ack_ms": {
            p: ms(
                pct([c.log1.ack_at - c.sent_at for c in clients if c.log1.ack_at and c.sent_at], q)
            )
            for p, q in (("p50", 50), ("p99", 99))
        },
        "reply_ms_p50": ms(
            pct([c.log1.done_at - c.sent_at for c in clients if c.log1.done_at and c.sent_at], 50)
        ),
        "errors": errors,
        "error_kinds": error_kinds,
        **integrity([c.log1 for c in clients]),
    }
    if second:
        lags = [
            c.log2.arrivals[s] - t1
            for c in clients
            for s, t1 in c.log1.arrivals.items()
            if s in c.log2.arrivals
        ]
        result["second"] = {
            **integrity([c.log2 for c in clients]),
            "lag_ms": {
                "p50": ms(pct(lags, 50)),
                "p99": ms(pct(lags, 99)),
                "max": ms(max(lags) if lags else None),
            },
        }
    return result


# --- Report -------------------------------------------------------------------------------------

COLUMNS = [
    ("scenario", 8),
    ("target", 8),
    ("N", 4),
    ("ttft p50", 9),
    ("ttft p99", 9),
    ("tok/s", 8),
    ("x tok/s", 8),
    ("x p99", 6),
    ("cpu us/tok", 10),
    ("err", 4),
    ("lost", 5),
    ("dup", 4),
    ("lag p50", 8),
    ("lag p99", 8),
    ("2nd lost/dup/dis", 16),
]


def fmt(value: object, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.2f}" if value < 10 else f"{value:.0f}"
    else:
        text = str(value)
    return text.rjust(width)


def table(rows: list[dict[str, Any]]) -> str:
    """Rows with the product's ratio to the bare relay at the same N and repeat."""
    bare = {(r["n"], r["repeat"]): r for r in rows if r["target"] == "bare"}
    lines = [" ".join(name.rjust(w) for name, w in COLUMNS)]
    for r in rows:
        base = bare.get((r["n"], r["repeat"]))
        x_tok = x_p99 = None
        if r["target"] != "bare" and base:
            if r["tokens_per_s"] and base["tokens_per_s"]:
                x_tok = r["tokens_per_s"] / base["tokens_per_s"]
            if r["ttft_ms"]["p99"] and base["ttft_ms"]["p99"]:
                x_p99 = r["ttft_ms"]["p99"] / base["ttft_ms"]["p99"]
        second = r.get("second")
        values = [
            r["scenario"],
            r["target"],
            r["n"],
            r["ttft_ms"]["p50"],
            r["ttft_ms"]["p99"],
            r["tokens_per_s"],
            x_tok,
            x_p99,
            r.get("server_cpu_us_per_token"),
            r["errors"],
            r["lost"],
            r["dup"] + r["disorder"],
            second and second["lag_ms"]["p50"],
            second and second["lag_ms"]["p99"],
            second and f"{second['lost']}/{second['dup']}/{second['disorder']}",
        ]
        lines.append(" ".join(fmt(v, w) for v, (_, w) in zip(values, COLUMNS, strict=True)))
    return "\n".join(lines)


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, target, N): medians over the repeats, counts summed."""

    def med(values: list[Any]) -> Any:
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 1) if values else None

    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["target"], r["n"]), []).append(r)
    out = []
    for (scenario, target, n), group in groups.items():
        row: dict[str, Any] = {
            "scenario": scenario,
            "target": target,
            "n": n,
            "repeat": "median",
            "repeats": len(group),
            "tokens_per_s": med([r["tokens_per_s"] for r in group]),
            "ttft_ms": {k: med([r["ttft_ms"][k] for r in group]) for k in ("p50", "p99", "max")},
            "server_cpu_us_per_token": med([r.get("server_cpu_us_per_token") for r in group]),
        }
        for key in ("errors", "lost", "dup", "disorder", "wrong_text"):
            row[key] = sum(r[key] for r in group)
        if "second" in group[0]:
            row["second"] = {
                **{
                    k: sum(r["second"][k] for r in group)
                    for k in ("lost", "dup", "disorder", "wrong_text")
                },
                "lag_ms": {
                    k: med([r["second"]["lag_ms"][k] for r in group]) for k in ("p50", "p99", "max")
                },
            }
        out.append(row)
    return out


# --- Main ---------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"logs-{stamp}"
    log_dir.mkdir()
    database_url, own_db = choose_database()
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    llm_port, bare_port, d1_port, d2_port = free_port(), free_port(), free_port(), free_port()
    server_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-" + uuid.uuid4().hex,
        # Throwaway personal-data keys: production settings refuse to start without them.
        "PII_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PII_INDEX_KEY": "bench-only-" + uuid.uuid4().hex,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
        "REDIS_URL": redis_url,
        "LLM_BASE_URL": f"http://127.0.0.1:{llm_port}/v1",
        "LLM_MODEL": "scripted",
        "LLM_FIRST_TOKEN_TIMEOUT": "30",
        "LLM_TOKEN_TIMEOUT": "30",
        "LOG_LEVEL": "WARNING",
        "CHATSITE_VAR_DIR": str(RESULTS / "var"),
        "PYTHONUNBUFFERED": "1",
    }
    django_setup(
        {
            k: server_env[k]
            for k in (
                "DJANGO_SETTINGS_MODULE",
                "DJANGO_DEBUG",
                "DJANGO_SECRET_KEY",
                "PII_ENCRYPTION_KEYS",
                "PII_INDEX_KEY",
                "DJANGO_ALLOWED_HOSTS",
                "DATABASE_URL",
                "REDIS_URL",
                "LOG_LEVEL",
                "CHATSITE_VAR_DIR",
                "DJANGO_SECURE_SSL_REDIRECT",
            )
        }
    )
    migrate = await asyncio.create_subprocess_exec(
        PYTHON, "manage.py", "migrate", "--noinput", "-v", "0", cwd=ROOT, env=server_env
    )
    if await migrate.wait() != 0:
        raise RuntimeError("migrate failed")
    if own_db:
        await asyncio.to_thread(db_reset)

    processes = Processes(log_dir)
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "started": stamp,
        "argv": sys.argv[1:],
        "tokens": args.tokens,
        "database": database_url.split("@")[-1],
        "redis": redis_url,
        "conn_max_age": args.conn_max_age,
        "chat_coalesce_ms": os.environ.get("CHAT_COALESCE_MS", "default"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }
    try:
        await processes.start(
            "scripted_llm",
            [
                PYTHON,
                "-m",
                "testkit.scripted_llm",
                "--port",
                str(llm_port),
                "--tokens",
                str(args.tokens),
            ],
            server_env,
            llm_port,
        )
        await processes.start(
            "bare",
            [
                PYTHON,
                "bench/bare_relay.py",
                "--port",
                str(bare_port),
                "--llm",
                server_env["LLM_BASE_URL"],
            ],
            server_env,
            bare_port,
        )
        for name, port in (("daphne1", d1_port), ("daphne2", d2_port)):
            await processes.start(
                name,
                [
                    PYTHON,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "chatsite.asgi:application",
                ],
                server_env,
                port,
            )
        bare = Target("bare", f"ws://127.0.0.1:{bare_port}/ws/conversations/")
        product = Target(
            "product",
            f"ws://127.0.0.1:{d1_port}/ws/conversations/",
            f"ws://127.0.0.1:{d2_port}/ws/conversations/",
        )
        scenarios = ["single", "second"] if args.scenario == "all" else [args.scenario]
        common = {
            "tokens": args.tokens,
            "reply_timeout": args.reply_timeout,
            "processes": processes,
            "bench_pid": os.getpid(),
        }

        # Warm-up, not recorded: imports, first connections, the LLM client's pool.
        for scenario in scenarios:
            for target in (bare, product):
                if target is bare and scenario == "second":
                    continue
                await run_phase(target=target, scenario=scenario, n=5, **common)

        for repeat in range(args.repeat):
            for n in args.n:
                plan = [(bare, "single")] + [(product, s) for s in scenarios]
                for target, scenario in plan:
                    row = await run_phase(
                        target=target,
                        scenario=scenario,
                        n=n,
                        profile_dir=log_dir if n == args.profile else None,
                        **common,
                    )
                    row["repeat"] = repeat
                    rows.append(row)
                    print(
                        table(
                            [r for r in rows if r["n"] == n and r["repeat"] == repeat]
                        ).splitlines()[-1],
                        flush=True,
                    )
    finally:
        await processes.stop()
    meta["loadavg_end"] = os.getloadavg()
    return {"meta": meta, "rows": rows, "logs": str(log_dir.relative_to(ROOT))}


def targets_check(rows: list[dict[str, Any]], n: int = 200) -> list[str]:
    """The issue's targets at N=200, one line each (PASS/MISS), per repeat."""
    lines = []
    bare = {r["repeat"]: r for r in rows if r["target"] == "bare" and r["n"] == n}
    for r in rows:
        if r["target"] != "product" or r["n"] != n or r["repeat"] not in bare:
            continue
        base = bare[r["repeat"]]
        x_tok = (r["tokens_per_s"] or 0) / (base["tokens_per_s"] or 1)
        x_p99 = (r["ttft_ms"]["p99"] or 1e9) / (base["ttft_ms"]["p99"] or 1)
        checks = [
            (f"tok/s {x_tok:.2f}x bare >= 0.5", x_tok >= 0.5),
            (f"TTFT p99 {x_p99:.2f}x bare <= 2", x_p99 <= 2),
        ]
        if "second" in r:
            lag = r["second"]["lag_ms"]["p99"]
            s = r["second"]
            checks.append((f"2nd socket lag p99 {lag} ms <= 250", lag is not None and lag <= 250))
            checks.append(
                (
                    "2nd socket complete, in order",
                    s["lost"] == 0 and s["dup"] == 0 and s["disorder"] == 0,
                )
            )
        lines.append(
            f"N={n} {r['scenario']} repeat {r['repeat']}: "
            + "; ".join(f"{'PASS' if ok else 'MISS'} {text}" for text, ok in checks)
        )
    for r in rows:
        if r["repeat"] == "median":
            continue
        bad = r["errors"] or r["lost"] or r["dup"] or r["disorder"] or r["wrong_text"]
        if "second" in r:
            s = r["second"]
            bad = bad or s["lost"] or s["dup"] or s["disorder"] or s["wrong_text"]
        if bad:
            lines.append(
                f"MISS N={r['n']} {r['target']} {r['scenario']} repeat {r['repeat']}: errors "
                f"{r['errors']} {r['error_kinds']} lost {r['lost']} dup {r['dup']} "
                f"disorder {r['disorder']} text {r['wrong_text']} {r.get('second', '')}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--n", default="1,50,200,500", type=lambda s: [int(x) for x in s.split(",") if x]
    )
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--scenario", choices=["single", "second", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DATABASE_CONN_MAX_AGE for the daphne processes",
    )
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=120.0,
        help="seconds a phase may take from the sends to the last reply",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=None,
        metavar="N",
        help="py-spy the servers during the phases at this N (needs py-spy)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on the whole run")
    args = parser.parse_args()

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await bench(args)

    result = asyncio.run(bounded())
    rows = result["rows"]
    print()
    print(table(rows))
    if args.repeat > 1:
        result["median"] = aggregate(rows)
        print(f"\nmedian of {args.repeat} repeats")
        print(table(result["median"]))
    print()
    for line in targets_check(rows + result.get("median", [])):
        print(line)
    out = RESULTS / f"ws_stream-{result['meta']['started']}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: {out.relative_to(ROOT)}  server logs: {result['logs']}")


if __name__ == "__main__":
    main()
