from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    """Conversations, messages, turns and the reply stream."""

    name = "conversations"
    verbose_name = "Conversations"
