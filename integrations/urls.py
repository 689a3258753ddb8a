"""Integration API routes of this app (webhooks, if any, are managed in the admin)."""

from __future__ import annotations

urlpatterns: list = []
