"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before anything imports models (the routing does).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chatsite.routing import websocket_urlpatterns  # noqa: E402
from nlu.classifier.serving import start_warm_up  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# A server process loads and tries the intent model now, in the background; /readyz answers 503
# "nlu warming" until it is done. Daphne sends no lifespan events, so "a server imported us" is
# the start-up signal. Tests and management commands import this module too, and must not touch
# the database at import: for them /readyz starts the warm-up on its first call.
SERVER_MODULES = ("daphne.cli", "uvicorn", "hypercorn", "gunicorn")
if any(name in sys.modules for name in SERVER_MODULES):
    start_warm_up()
