"""NLU API routes (parse; intents, examples, sensitive words and models for admin-data keys)."""

from __future__ import annotations

urlpatterns: list = []
