"""WebSocket routes of voice chat."""

from __future__ import annotations

from django.urls import path

from voice.consumers import VoiceConsumer

websocket_urlpatterns = [
    path("ws/voice/<str:conversation_id>/", VoiceConsumer.as_asgi()),
]
