"""Per-turn database cost against conversation length: 10 turns of history vs 1,000.

A turn's writes and reads (services.turn_start + services.reply_finish: the user message, the
empty reply, the prompt's history, the state moves) must cost the same whatever the history. This
builds one conversation of each length, then times N further turns on each, interleaved, and
prints the medians and their ratio (long / short). Statement counts are printed too.

    .venv/bin/python bench/turn_cost.py                 # SQLite in bench/results/, or
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite_tc .venv/bin/python \
        bench/turn_cost.py
    .venv/bin/python bench/turn_cost.py --dialogue      # turns through the dialogue engine

With --dialogue the demo domain is loaded (order_meal with the model writing its replies) and
every measured turn is a correction at the confirmation step ("改成两份" / "改成三份"): the
slots are read and decrypted, the policy decides, a slot and its change are written, and the
prompt is built with the slots and the history. Only the model call is left out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
if not os.environ.get("DATABASE_URL"):
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'bench' / 'results' / 'turn_cost.sqlite3'}"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from conversations import dialogue, services  # noqa: E402
from conversations.models import Conversation, ConversationState, Message, MessageRole  # noqa: E402
from nlu.models import Intent  # noqa: E402

CORRECTIONS = ("改成两份", "改成三份")


def build(turns: int) -> Conversation:
    """A conversation with `turns` finished exchanges (2 x turns messages)."""
    conversation = Conversation.objects.create(session_key=f"bench-{uuid.uuid4().hex[:20]}")
    rows = []
    for i in range(turns):
        rows.append(
            Message(
                conversation=conversation,
                sequence=2 * i + 1,
                role=MessageRole.USER,
                text=f"question {i} " * 8,
                client_id=uuid.uuid4(),
            )
        )
        rows.append(
            Message(
                conversation=conversation,
                sequence=2 * i + 2,
                role=MessageRole.ASSISTANT,
                text=f"answer {i} " * 20,
            )
        )
    Message.objects.bulk_create(rows, batch_size=1000)
    return conversation


def open_order(conversation: Conversation) -> None:
    """Put the conversation at the confirmation step of an order, every slot filled."""
    values = {"meal": "classic", "quantity": "1", "phone": "13912345678", "address": "人民路8号"}
    for slot in Intent.objects.get(name="order_meal").slots.all():
        services.slot_set(
            conversation_id=conversation.pk,
            name=slot.name,
            kind=slot.slot_type,
            value=values[slot.name],
            personal=slot.is_personal_data,
        )
    Conversation.objects.filter(pk=conversation.pk).update(
        intent="order_meal",
        context={"language": "zh", "filled": sorted(values), "confirming": True},
    )


def one_turn(conversation: Conversation, turn: int) -> tuple[float, int]:
    """Seconds and statements for one turn's database work."""
    outcome = services.ReplyOutcome(
        text="ok " * 30, status="complete", token_count=30, ttft_ms=100, total_ms=900
    )
    text = CORRECTIONS[turn % 2]
    with CaptureQueriesContext(connection) as queries:
        started_at = time.perf_counter()
        started = services.turn_start(
            conversation_id=conversation.pk, text=text, client_id=uuid.uuid4()
        )
        if started.dialogue is not None:
            decision = dialogue.decide(started.dialogue, started.intents, text)
            assert decision is not None
            assert decision.writes, decision
            prompt = services.dialogue_apply(
                conversation_id=conversation.pk,
                reply_id=started.reply.pk,
                user_message_id=started.user_message.pk,
                decision=decision,
                history=started.history,
            )
            assert "- 份数: " in prompt[0]["content"]
        services.reply_finish(
            reply_id=started.reply.pk,
            conversation_id=conversation.pk,
            outcome=outcome,
            from_state=ConversationState.CALLING_AI,
        )
        elapsed = time.perf_counter() - started_at
    return elapsed, len(queries.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=200, help="measured turns per conversation")
    parser.add_argument("--dialogue", action="store_true", help="turns through the dialogue")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if Intent.objects.exists():
        sys.exit("this database has intents: give the bench a database of its own (see above)")
    if args.dialogue:
        call_command("load_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        Intent.objects.filter(name="order_meal").update(reply_mode="llm")
    short, long = build(args.short), build(args.long)
    if args.dialogue:
        open_order(short)
        open_order(long)
    for conversation in (short, long):  # warm caches and connections
        one_turn(conversation, 0)
    times: dict[str, list[float]] = {"short": [], "long": []}
    statements: dict[str, set[int]] = {"short": set(), "long": set()}
    for turn in range(1, args.turns + 1):
        for name, conversation in (("short", short), ("long", long)):
            elapsed, count = one_turn(conversation, turn)
            times[name].append(elapsed)
            statements[name].add(count)

    engine = connection.vendor
    short_ms = statistics.median(times["short"]) * 1000
    long_ms = statistics.median(times["long"]) * 1000
    mode = "through the dialogue" if args.dialogue else "free chat"
    print(f"database: {engine}; {args.turns} turns each, interleaved, {mode}")
    print(
        f"{args.short:>6} turns of history: median {short_ms:.2f} ms/turn, "
        f"statements {sorted(statements['short'])}"
    )
    print(
        f"{args.long:>6} turns of history: median {long_ms:.2f} ms/turn, "
        f"statements {sorted(statements['long'])}"
    )
    print(f"ratio long/short: {long_ms / short_ms:.2f}")
    Conversation.objects.filter(pk__in=[short.pk, long.pk]).delete()
    Intent.objects.all().delete()


if __name__ == "__main__":
    main()
