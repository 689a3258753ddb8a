"""One voice socket's pipeline: microphone audio in, a turn, spoken reply out.

audio -> Segmenter (speech start/end) -> partial transcripts while speaking (at most every
PARTIAL_EVERY_S) -> final transcript -> turns.turn_submit(source=voice), the same turn as typed
text -> follow_reply (the reply's frames, forwarded) -> sentences -> TTS -> audio frames.

Speaking over the bot (a new utterance starting while a reply is generated or still playing) is a
barge-in: the client is told to stop playback, the reply is cancelled (stored interrupted with
error code barge_in) and the new utterance is handled once that reply has ended.

Nothing here blocks the event loop: ASR and TTS run in the engines' bounded pools, and every
step that waits on them runs in a task of its own, so audio keeps being read meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatsite.exceptions import ApplicationError
from conversations.follow import follow_reply
from conversations.models import Conversation, MessageSource
from conversations.turns import turn_cancel, turn_submit
from voice import asr, tts
from voice.audio import SAMPLE_RATE
from voice.protocol import (
    VOICE_PROTOCOL_VERSION,
    AudioFrame,
    CancelFrame,
    EndFrame,
    PingFrame,
    StartFrame,
    VoiceFrame,
    max_frame_bytes,
)
from voice.vad import Segmenter, SpeechEnded, SpeechStarted

logger = logging.getLogger(__name__)

Frame = dict[str, Any]
SendJson = Callable[[Frame], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]

# The budget for partial transcripts: one at most this often while the user speaks, and
# only once there is enough speech to say something about.
PARTIAL_EVERY_S = 0.7
PARTIAL_MIN_S = 0.3
# A partial of at least this much audio names the language the final transcript is made in.
LANGUAGE_FROM_PARTIAL_S = 1.0
# Audio out travels in binary frames of at most this many bytes (whole PCM16 samples).
AUDIO_CHUNK_BYTES = 16 * 1024
# The reply is followed with this keep-alive; after this many idle periods in a row it is given up.
FOLLOW_IDLE_S = 5.0
FOLLOW_IDLE_LIMIT = 24
# A new utterance waits this long at most for the reply it barged in on to be stored.
PREVIOUS_TURN_WAIT_S = 15.0

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Markdown that must not be read out: emphasis, headings, code fences, escapes, links' targets.
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_SYMBOLS = re.compile(r"[*_`#>~|\\]+")


def speakable(text: str) -> str:
    """A reply's Markdown as words for TTS: link labels kept, markup symbols dropped."""
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_SYMBOLS.sub(" ", text)
    return " ".join(text.split())


def sentence_language(text: str, fallback: str) -> str:
    """zh for a sentence with Chinese characters in it, en for one without (else the fallback)."""
    if _CJK.search(text):
        return "zh"
    if re.search(r"[A-Za-z]", text):
        return "en"
    return fallback


@dataclass
class _Turn:
    """One utterance's way through the pipeline, as far as it got."""

    utterance: int
    task: asyncio.Task[None] | None = None
    reply_id: str | None = None
    # Set by a barge-in: nothing more of this turn is spoken, and it submits nothing new.
    muted: bool = False
    # When the audio sent so far ends playing on the client (monotonic clock, estimated).
    playback_until: float = 0.0

    def answering(self) -> bool:
        """Its reply is being generated or spoken, or (as far as we know) still plays."""
        running = self.task is not None and not self.task.done()
        return (running and self.reply_id is not None) or time.monotonic() < self.playback_until


class VoiceSession:
    """The per-socket pipeline; the consumer hands it frames and closes it on disconnect."""

    # Sentence by sentence is the product; False speaks the whole reply once it is written
    # (bench/voice.py's baseline, to show what streaming TTS buys).
    sentence_by_sentence: bool = True

    def __init__(
        self, conversation: Conversation, *, send_json: SendJson, send_bytes: SendBytes
    ) -> None:
        self.conversation = conversation
        self._send_json = send_json
        self._send_bytes = send_bytes
        self.language: str | None = None
        self._segmenter: Segmenter | None = None
        self._utterance = 0
        self._speaking = False
        self._last_partial = 0.0
        self._partial: asyncio.Task[None] | None = None
        # The language the partials of the current utterance found (see _final_language).
        self._partial_language: tuple[int, str] | None = None
        self._final_sent = 0  # the last utterance whose final transcript went out
        # A final transcript started while the end-of-speech silence is still being waited out:
        # (utterance, the audio it transcribes, its task); used if the utterance ends just so.
        self._guess: tuple[int, bytes, asyncio.Task[asr.Transcript | None]] | None = None
        self._turn: _Turn | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- from the consumer ------------------------------------------------------------------

    async def open(self) -> None:
        """Load the segmenter (its first load reads the VAD model) and greet the client."""
        self._segmenter = await asyncio.to_thread(
            Segmenter, max_utterance_s=settings.VOICE_MAX_UTTERANCE_S
        )
        # The recogniser loads while the user starts talking, not after they stop.
        self._spawn(asyncio.to_thread(asr.warm_up))
        await self._send(
            {
                "type": "hello",
                "protocol": VOICE_PROTOCOL_VERSION,
                "conversation_id": str(self.conversation.public_id),
                "sample_rate": SAMPLE_RATE,
                "max_frame_bytes": max_frame_bytes(),
                "max_utterance_s": settings.VOICE_MAX_UTTERANCE_S,
            }
        )

    async def handle(self, frame: VoiceFrame) -> None:
        """Act on one parsed client frame."""
        if isinstance(frame, AudioFrame):
            await self._audio(frame.pcm)
        elif isinstance(frame, StartFrame):
            self.language = frame.language
        elif isinstance(frame, EndFrame):
            ended = self._vad.flush()
            if ended is not None:
                self._ended(ended)
            elif self._speaking:
                self._speaking = False
        elif isinstance(frame, CancelFrame):
            await self._barge_in(reason="cancel")
        elif isinstance(frame, PingFrame):
            await self._send({"type": "pong"})

    async def close(self) -> None:
        """Stop everything this socket started; a reply already submitted goes on being written."""
        self._closed = True
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- audio in ---------------------------------------------------------------------------

    async def _audio(self, pcm: bytes) -> None:
        # Silero on one 40 ms frame is well under a millisecond; the segmenter keeps state that
        # must see frames in order, which the consumer's one-at-a-time dispatch guarantees.
        for event in self._vad.feed(pcm):
            if isinstance(event, SpeechStarted):
                await self._started()
            elif isinstance(event, SpeechEnded):
                self._ended(event)
        if self._speaking:
            self._maybe_guess()
            self._maybe_partial()

    async def _started(self) -> None:
        self._utterance += 1
        self._partial_language = None
        self._speaking = True
        self._last_partial = time.monotonic()
        await self._send({"type": "speech.start", "utterance": self._utterance})
        await self._barge_in(reason="barge_in")

    def _ended(self, ended: SpeechEnded) -> None:
        self._speaking = False
        # A partial still running is left to finish: it usually beats the final transcript
        # (greedy decoding, less audio) and shows the user something meanwhile.
        previous = self._turn
        turn = _Turn(utterance=self._utterance)
        self._turn = turn
        guess = self._guess
        self._guess = None
        early = None
        if guess is not None and guess[0] == self._utterance and guess[1] == ended.utterance:
            early = guess[2]
        turn.task = self._spawn(self._run_turn(turn, ended.utterance, previous, early))

    def _maybe_guess(self) -> None:
        """Start the final transcript as soon as the silence after speech could be its end.

        The segmenter waits VOICE_END_SILENCE_MS (600 ms) of silence before it calls an
        utterance over; from TAIL_MS (200 ms) on, the audio it will hand over is already known
        (Segmenter.ending), so recognition starts 400 ms sooner. If the user speaks again the
        guess is dropped (its worker finishes and the result is ignored); it never queues.
        """
        pcm = self._vad.ending()
        if pcm is None:
            return
        if self._guess is not None and self._guess[0] == self._utterance:
            if len(self._guess[1]) == len(pcm):
                return  # already guessing this very audio
        utterance = self._utterance
        self._guess = (utterance, pcm, self._spawn(self._transcribe_guess(utterance, pcm)))

    async def _transcribe_guess(self, utterance: int, pcm: bytes) -> asr.Transcript | None:
        try:
            return await asr.atranscribe(pcm, language=self._final_language(utterance), wait=False)
        except ApplicationError:
            return None  # no free worker: the final is transcribed as usual

    def _maybe_partial(self) -> None:
        now = time.monotonic()
        if now - self._last_partial < PARTIAL_EVERY_S:
            return
        if self._partial is not None and not self._partial.done():
            return  # one at a time: a slow partial is skipped, never queued
        pcm = self._vad.speech_so_far()
        if len(pcm) < PARTIAL_MIN_S * SAMPLE_RATE * 2:
            return
        self._last_partial = now
        self._partial = self._spawn(self._send_partial(self._utterance, pcm))

    async def _send_partial(self, utterance: int, pcm: bytes) -> None:
        try:
            transcript = await asr.atranscribe(
                pcm, language=self._final_language(utterance), partial=True
            )
        except ApplicationError as exc:
            # A partial is a courtesy: when the pool is full it is skipped, the final is not.
            logger.debug("partial transcript skipped", extra={"code": exc.code})
            return
        current = utterance == self._utterance
        if current and self._partial_language is None:
            if transcript.audio_s >= LANGUAGE_FROM_PARTIAL_S:
                self._partial_language = (utterance, transcript.language)
        if current and self._final_sent < utterance and transcript.text:
            await self._send(
                {"type": "transcript.partial", "utterance": utterance, "text": transcript.text}
            )

    # --- barge-in ---------------------------------------------------------------------------

    async def _barge_in(self, *, reason: str) -> None:
        """Stop the turn being answered or spoken, if any."""
        turn = self._turn
        # A turn still being transcribed is not interrupted: the user paused and went on, and
        # both parts are answered in order (the next waits for this one's reply).
        if turn is None or turn.muted or not turn.answering():
            return
        turn.muted = True
        turn.playback_until = 0.0
        cancelled = bool(turn.reply_id) and turn_cancel(str(turn.reply_id), reason="barge_in")
        logger.info(
            "voice barge-in",
            extra={"message_id": turn.reply_id, "reason": reason, "cancelled": cancelled},
        )
        await self._send(
            {
                "type": "barge_in",
                "reply_id": turn.reply_id,
                "utterance": turn.utterance,
                "cancelled": cancelled,
            }
        )

    # --- one turn ---------------------------------------------------------------------------

    async def _run_turn(
        self,
        turn: _Turn,
        pcm: bytes,
        previous: _Turn | None,
        early: asyncio.Task[asr.Transcript | None] | None = None,
    ) -> None:
        try:
            await self._turn_steps(turn, pcm, previous, early)
        except ApplicationError as exc:
            await self._error(exc.code, exc.message, utterance=turn.utterance, detail=exc.extra)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("voice turn failed", extra={"message_id": turn.reply_id})
            await self._error("internal_error", "Something went wrong", utterance=turn.utterance)

    async def _turn_steps(
        self,
        turn: _Turn,
        pcm: bytes,
        previous: _Turn | None,
        early: asyncio.Task[asr.Transcript | None] | None,
    ) -> None:
        transcript = await early if early is not None else None
        if transcript is None:
            transcript = await asr.atranscribe(pcm, language=self._final_language(turn.utterance))
        self._final_sent = max(self._final_sent, turn.utterance)
        await self._send(
            {
                "type": "transcript.final",
                "utterance": turn.utterance,
                "text": transcript.text,
                "language": transcript.language,
                "audio_ms": round(transcript.audio_s * 1000),
                "asr_ms": round(transcript.elapsed_s * 1000),
            }
        )
        text = transcript.text.strip()
        if not text or turn.muted:
            return
        if previous is not None and previous.task is not None and not previous.task.done():
            # The reply this utterance barged in on is being stored; a turn started before that
            # would be refused with turn_in_progress.
            await asyncio.wait({previous.task}, timeout=PREVIOUS_TURN_WAIT_S)
        ack = await turn_submit(
            conversation=self.conversation,
            text=text,
            client_id=uuid.uuid4(),
            source=MessageSource.VOICE,
        )
        turn.reply_id = ack.reply_id
        await self._send({**ack.frame(), "utterance": turn.utterance})
        await self._speak_reply(turn, transcript.language)

    def _final_language(self, utterance: int) -> str | None:
        """The language to transcribe in: the client's choice, else what the first partial of
        at least LANGUAGE_FROM_PARTIAL_S of this utterance heard, else None (the recogniser
        detects it). Detection is an encoder pass of its own: on 3 s of speech it doubled the
        recognition time (bench/voice.py, docs/performance.md)."""
        if self.language:
            return self.language
        if self._partial_language is not None and self._partial_language[0] == utterance:
            return self._partial_language[1]
        return None

    async def _speak_reply(self, turn: _Turn, language: str) -> None:
        """Forward the reply's frames; speak its sentences as they complete."""
        assert turn.reply_id is not None
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = self._spawn(self._speaker(turn, sentences, language))
        pending = ""
        idle = 0
        try:
            async for frame in follow_reply(
                self.conversation, turn.reply_id, 0, idle_seconds=FOLLOW_IDLE_S
            ):
                if frame is None:
                    idle += 1
                    if idle >= FOLLOW_IDLE_LIMIT:
                        break
                    continue
                idle = 0
                await self._send(frame)
                if frame["type"] == "message.delta":
                    pending += "".join(frame["tokens"])
                    if self.sentence_by_sentence and not turn.muted:
                        ready, pending = tts.split_sentences(pending)
                        for sentence in ready:
                            sentences.put_nowait(sentence)
                elif frame["type"] == "message.snapshot":
                    pending = frame["text"]
            if pending.strip() and not turn.muted:
                sentences.put_nowait(pending)
        finally:
            sentences.put_nowait(None)
        await speaker

    async def _speaker(
        self, turn: _Turn, sentences: asyncio.Queue[str | None], language: str
    ) -> None:
        """Synthesise and send sentences in order; the client plays them back to back."""
        count = 0
        while (sentence := await sentences.get()) is not None:
            if turn.muted:
                continue
            words = speakable(sentence)
            if not words:
                continue
            try:
                speech = await tts.asynthesize(words, language=sentence_language(words, language))
            except ApplicationError as exc:
                # The text is on screen already; a sentence that cannot be spoken is skipped.
                await self._error(exc.code, exc.message, utterance=turn.utterance)
                continue
            if turn.muted or not speech.pcm:
                continue
            count += 1
            await self._send_audio(turn, count, sentence, speech)
        if count and not turn.muted:
            await self._send({"type": "audio.done", "reply_id": turn.reply_id, "sentences": count})

    async def _send_audio(self, turn: _Turn, index: int, text: str, speech: tts.Speech) -> None:
        pcm = speech.pcm[: len(speech.pcm) // 2 * 2]
        await self._send(
            {
                "type": "audio.start",
                "reply_id": turn.reply_id,
                "sentence": index,
                "text": text,
                "sample_rate": speech.sample_rate,
                "bytes": len(pcm),
            }
        )
        for offset in range(0, len(pcm), AUDIO_CHUNK_BYTES):
            if turn.muted:
                return
            if self._closed:
                return
            await self._send_bytes(pcm[offset : offset + AUDIO_CHUNK_BYTES])
        # Where the client's playback of this sentence will end, were it to start now at the
        # latest: lets a new utterance count as a barge-in while the audio is still playing.
        seconds = len(pcm) / 2 / speech.sample_rate
        turn.playback_until = max(time.monotonic(), turn.playback_until) + seconds

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def _vad(self) -> Segmenter:
        assert self._segmenter is not None, "open() first"
        return self._segmenter

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _error(
        self,
        code: str,
        message: str,
        *,
        utterance: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        frame: Frame = {"type": "error", "code": code, "message": message}
        if utterance is not None:
            frame["utterance"] = utterance
        if detail:
            frame["detail"] = detail
        await self._send(frame)

    async def _send(self, frame: Frame) -> None:
        if not self._closed:
            await self._send_json(frame)
