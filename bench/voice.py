"""Voice latency: from the end of a ~3 s utterance to the first byte of the reply's audio.

    .venv/bin/python bench/voice.py                  # 20 utterances per mode, ~5 minutes
    .venv/bin/python bench/voice.py --n 6 --modes sentence

Each utterance (10 English, 10 Chinese sentences of about 3 s, spoken by the product's own TTS
and resampled to 16 kHz) goes to a fresh conversation over the voice socket of the real ASGI
application (`chatsite.asgi`, through channels' WebsocketCommunicator in this process: no
network stack, so only our pipeline is measured), in 40 ms frames at the pace of a microphone,
followed by 1.5 s of silence. The reply comes from the scripted LLM (testkit/scripted_llm.py, in a
thread of this process): three sentences, one token every --token-delay seconds.

* latency: from the moment the utterance's last speech frame was sent to the first binary audio
  frame received. It includes the segmenter's end-of-speech wait (VOICE_END_SILENCE_MS), the
  final transcript, the turn (moderation, storing, the LLM's first sentence) and its TTS.
* modes, interleaved utterance by utterance: `sentence` (the product: each sentence is spoken as
  soon as it is complete) and `whole` (the baseline: the reply is spoken once it is all written,
  VoiceSession.sentence_by_sentence = False); optional `hinted`: `sentence` with the utterance's
  language in the `start` frame (no language detection).
* ASR real-time factor: recognition time / audio time, from the final transcripts of the runs
  (under the partials' competition, as served) and from a standalone pass over the same
  utterances (`asr.transcribe`, one at a time, language detected).

Database: DATABASE_URL if set, else SQLite in bench/results/voice.sqlite3 (migrated here). Results
go to stdout and bench/results/voice-<UTC time>.json. See docs/performance.md, "Voice".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
if not os.environ.get("DATABASE_URL"):
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{RESULTS / 'voice.sqlite3'}"
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from channels.db import database_sync_to_async  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402

from chatsite.asgi import application  # noqa: E402
from conversations.models import Conversation  # noqa: E402
from testkit.scripted_llm import Script, ScriptedLlm  # noqa: E402
from voice import asr  # noqa: E402
from voice.audio import SAMPLE_RATE, resample_pcm16  # noqa: E402
from voice.session import VoiceSession  # noqa: E402
from voice.tts import synthesize  # noqa: E402

FRAME_BYTES = 1280  # 40 ms, what the page's worklet posts
FRAME_S = 0.04
LEAD_S = 0.3
TAIL_S = 1.5

SENTENCES = [
    ("en", "What time does the shop open on Sunday morning?"),
    ("zh", "请问你们周日早上几点开门？"),
    ("en", "I would like to order two classic meals, please."),
    ("zh", "我想订两份经典套餐，谢谢。"),
    ("en", "Can you change my phone number on the order?"),
    ("zh", "可以帮我改一下订单上的电话号码吗？"),
    ("en", "Where is my order, it has been an hour."),
    ("zh", "我的订单到哪里了，已经一个小时了。"),
    ("en", "Please tell me how long the delivery takes."),
    ("zh", "请告诉我送餐需要多长时间。"),
]
REPLIES = {
    "en": "Sure, I can help with that. We open at nine in the morning on Sundays. "
    "Is there anything else you would like to know?",
    "zh": "好的，我来帮您。我们周日早上九点开门，晚上十点关门。还有什么可以帮您的吗？",
}


def utterances(n: int) -> list[tuple[str, str, bytes]]:
    """n (language, text, 16 kHz PCM16 speech) made with the product's TTS."""
    made = []
    for i in range(n):
        language, text = SENTENCES[i % len(SENTENCES)]
        speech = synthesize(text, language=language)
        made.append((language, text, resample_pcm16(speech.pcm, speech.sample_rate, SAMPLE_RATE)))
    return made


def tokens(text: str) -> list[str]:
    """English by words, Chinese by two characters: roughly what a model streams."""
    if text.isascii():
        return Script.words(text).tokens
    return [text[i : i + 2] for i in range(0, len(text), 2)]


def new_conversation() -> tuple[Conversation, str]:
    session = SessionStore()
    session.create()
    return Conversation.objects.create(session_key=session.session_key), session.session_key


async def one_utterance(pcm: bytes, language: str | None = None) -> dict[str, Any]:
    """Speak one utterance into a fresh conversation; timings in ms from the end of speech."""
    conversation, session_key = await database_sync_to_async(new_conversation)()
    ws = WebsocketCommunicator(
        application,
        f"/ws/voice/{conversation.public_id}/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={session_key}".encode()),
        ],
    )
    connected, _ = await ws.connect()
    assert connected, "voice socket refused"
    await ws.receive_from()  # hello
    await ws.send_json_to({"type": "start", "language": language})
    audio = bytes(int(LEAD_S * SAMPLE_RATE) * 2) + pcm
    silence = bytes(int(TAIL_S * SAMPLE_RATE) * 2)
    marks: dict[str, float] = {}
    finals: list[dict[str, Any]] = []
    partials = 0
    errors: list[str] = []

    stream = audio + silence

    async def speak() -> None:
        start = time.perf_counter()
        for index, offset in enumerate(range(0, len(stream), FRAME_BYTES)):
            if offset >= len(audio) and "speech_end" not in marks:
                marks["speech_end"] = time.perf_counter()
            await ws.send_to(bytes_data=stream[offset : offset + FRAME_BYTES])
            # Real time, without drift: frame i leaves at i x 40 ms.
            await asyncio.sleep(max(0.0, start + (index + 1) * FRAME_S - time.perf_counter()))

    speaker = asyncio.create_task(speak())
    try:
        while True:
            output = await ws.receive_output(timeout=60)
            now = time.perf_counter()
            if output.get("bytes") is not None:
                marks.setdefault("first_audio", now)
                continue
            frame = json.loads(output["text"])
            kind = frame["type"]
            marks.setdefault(kind, now)
            if kind == "transcript.partial":
                partials += 1
            elif kind == "transcript.final":
                finals.append(frame)
            elif kind == "error":
                errors.append(frame["code"])
            nothing_said = kind == "transcript.final" and not frame["text"].strip()
            if kind in ("audio.done", "error") or nothing_said:
                break
    finally:
        await speaker
        await ws.disconnect()
    end = marks["speech_end"]
    return {
        **{f"{k}_ms": round((v - end) * 1000, 1) for k, v in marks.items() if k != "speech_end"},
        "audio_ms": finals[0]["audio_ms"] if finals else None,
        "asr_ms": finals[0]["asr_ms"] if finals else None,
        "text": finals[0]["text"] if finals else "",
        "language": finals[0]["language"] if finals else "",
        "partials": partials,
        "errors": errors,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(args: argparse.Namespace, speech: list[tuple[str, str, bytes]], llm: ScriptedLlm):
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    # Warm-up (not recorded): model loads, first connections, first TTS.
    llm.script = Script(tokens=tokens(REPLIES["en"]), token_delay=args.token_delay)
    await one_utterance(speech[0][2])
    for index, (language, text, pcm) in enumerate(speech):
        llm.script = Script(tokens=tokens(REPLIES[language]), token_delay=args.token_delay)
        for mode in args.modes:
            VoiceSession.sentence_by_sentence = mode != "whole"
            row = await one_utterance(pcm, language if mode == "hinted" else None)
            row.update(mode=mode, said=text, speech_s=round(len(pcm) / 2 / SAMPLE_RATE, 2))
            results[mode].append(row)
            print(
                f"{index + 1:>2} {mode:<8} {row['speech_s']:.2f} s said, first audio "
                f"{row.get('first_audio_ms', float('nan')):7.0f} ms, final "
                f"{row.get('transcript.final_ms', float('nan')):6.0f} ms (asr {row['asr_ms']} ms)"
                f" {row['text']!r}",
                flush=True,
            )
    VoiceSession.sentence_by_sentence = True
    return results


def standalone_rtf(speech: list[tuple[str, str, bytes]]) -> list[float]:
    """Recognition time / audio time, one utterance at a time, nothing else running."""
    factors = []
    for _language, _text, pcm in speech:
        padded = bytes(int(LEAD_S * SAMPLE_RATE) * 2) + pcm + bytes(int(0.2 * SAMPLE_RATE) * 2)
        transcript = asr.transcribe(padded)
        factors.append(transcript.elapsed_s / transcript.audio_s)
    return factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="utterances per mode")
    parser.add_argument("--modes", default="sentence,whole", type=lambda s: s.split(","))
    parser.add_argument("--token-delay", type=float, default=0.03, help="seconds between tokens")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    speech = utterances(args.n)
    llm = ScriptedLlm().start()
    settings.LLM_BASE_URL = llm.base_url
    settings.LLM_MODEL = "scripted"
    try:
        results = asyncio.run(run(args, speech, llm))
    finally:
        llm.stop()
    rtf_alone = standalone_rtf(speech)

    summary: dict[str, Any] = {}
    print(
        f"\n{args.n} utterances per mode, {os.cpu_count()} cores, "
        f"VOICE_END_SILENCE_MS={settings.VOICE_END_SILENCE_MS}, token delay {args.token_delay}s, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'mode':<9}{'p50 ms':>8}{'p99 ms':>8}{'final p50':>11}{'ack p50':>9}"
        f"{'final->audio p50':>18}{'errors':>8}"
    )
    for mode, rows in results.items():
        firsts = [r["first_audio_ms"] for r in rows if "first_audio_ms" in r]
        finals = [r["transcript.final_ms"] for r in rows if "transcript.final_ms" in r]
        acks = [r["message.ack_ms"] for r in rows if "message.ack_ms" in r]
        # What the TTS strategy changes: from the final transcript to the first audio.
        after = [
            r["first_audio_ms"] - r["transcript.final_ms"] for r in rows if "first_audio_ms" in r
        ]
        summary[mode] = {
            "first_audio_p50_ms": pct(firsts, 0.5),
            "first_audio_p99_ms": pct(firsts, 0.99),
            "final_transcript_p50_ms": pct(finals, 0.5),
            "ack_p50_ms": pct(acks, 0.5),
            "final_to_audio_p50_ms": pct(after, 0.5),
            "final_to_audio_p99_ms": pct(after, 0.99),
            "missing_audio": len(rows) - len(firsts),
            "errors": sum(len(r["errors"]) for r in rows),
        }
        s = summary[mode]
        print(
            f"{mode:<9}{s['first_audio_p50_ms']:>8.0f}{s['first_audio_p99_ms']:>8.0f}"
            f"{s['final_transcript_p50_ms']:>11.0f}{s['ack_p50_ms']:>9.0f}"
            f"{s['final_to_audio_p50_ms']:>18.0f}"
            f"{s['errors'] + s['missing_audio']:>8}"
        )
    served = [r["asr_ms"] / r["audio_ms"] for rows in results.values() for r in rows if r["asr_ms"]]
    summary["asr_rtf_served_p50"] = statistics.median(served)
    summary["asr_rtf_alone_p50"] = statistics.median(rtf_alone)
    summary["asr_rtf_alone_p99"] = pct(rtf_alone, 0.99)
    print(
        f"ASR real-time factor: {summary['asr_rtf_alone_p50']:.2f} p50 "
        f"({summary['asr_rtf_alone_p99']:.2f} p99) alone, "
        f"{summary['asr_rtf_served_p50']:.2f} p50 as served (with partials)"
    )
    if {"sentence", "whole"} <= set(results):
        ratio = summary["whole"]["first_audio_p50_ms"] / summary["sentence"]["first_audio_p50_ms"]
        summary["ratio_whole_over_sentence_p50"] = ratio
        print(f"first audio, whole-reply TTS / sentence by sentence (p50): {ratio:.2f}x")
        after_ratio = (
            summary["whole"]["final_to_audio_p50_ms"] / summary["sentence"]["final_to_audio_p50_ms"]
        )
        summary["ratio_final_to_audio_whole_over_sentence_p50"] = after_ratio
        print(f"final transcript to first audio, whole / sentence (p50): {after_ratio:.2f}x")
    if "sentence" in summary:
        verdict = "PASS" if summary["sentence"]["first_audio_p50_ms"] < 1200 else "MISS"
        print(f"target p50 < 1200 ms (sentence by sentence): {verdict}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"voice-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg(),
                },
                "summary": summary,
                "asr_rtf_alone": rtf_alone,
                "results": results,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
