"""Voice errors: stable codes shared by the voice socket and the API."""

from __future__ import annotations

from chatsite.exceptions import ApplicationError


class VoiceBusy(ApplicationError):
    """Every ASR/TTS slot of this process is taken and the wait queue is full."""

    code = "voice_busy"
    status = 503


class AudioInvalid(ApplicationError):
    """The audio cannot be read: not PCM16, a broken WAV, an odd byte count, too long."""

    code = "audio_invalid"
    status = 400


class VoiceModelError(ApplicationError):
    """The packaged Whisper model is missing or does not match the expected bytes."""

    code = "voice_model_unavailable"
    status = 503
