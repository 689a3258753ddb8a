from django.apps import AppConfig


class NluConfig(AppConfig):
    """Language: the LLM client, the local model, and later intents and moderation."""

    name = "nlu"
    verbose_name = "Language understanding"
