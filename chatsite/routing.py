"""Collects every app's WebSocket routes."""

from __future__ import annotations

from conversations.routing import websocket_urlpatterns as conversation_routes
from voice.routing import websocket_urlpatterns as voice_routes

websocket_urlpatterns = [*conversation_routes, *voice_routes]
