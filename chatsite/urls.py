"""Top-level URLs: health probes, admin, the REST API and the chat pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from chatsite import health

# Every app's API under /api/ in one namespace: reverse("api:conversation-state", ...).
api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("conversations.api.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/", include((api_patterns, "api"))),
    path("", include("conversations.urls")),
]

# JSON errors under /api/ (for URLs no API view matched), the HTML pages elsewhere.
handler404 = "chatsite.api.page_not_found"
handler500 = "chatsite.api.server_error"
