"""Top-level URLs: health probes, admin, and the chat pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chatsite import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("conversations.urls")),
]
