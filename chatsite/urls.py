"""Top-level URLs: health probes, admin, the REST API and the chat pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from chatsite import health
from chatsite.api import api_not_found

# Every app's API under /api/v1/ in one namespace: reverse("api:conversation-state", ...).
api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include("conversations.api.urls")),
    path("", include("nlu.api.urls")),
    path("", include("integrations.urls")),
    # Last: whatever else is under /api/v1/ is a JSON 404 (a malformed id, a typo).
    re_path(r"^(?P<rest>[\s\S]*)$", api_not_found),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_patterns, "api"))),
    path("", include("conversations.urls")),
]

# JSON errors under /api/ (for URLs no API view matched), the HTML pages elsewhere.
handler404 = "chatsite.api.page_not_found"
handler500 = "chatsite.api.server_error"
