"""Collects every app's WebSocket routes."""

from __future__ import annotations

from conversations.routing import websocket_urlpatterns as conversation_routes

websocket_urlpatterns = [*conversation_routes]
