from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """Voice chat (ASR -> dialogue -> TTS); depends on conversations, never the reverse."""

    name = "voice"
    verbose_name = "Voice"
