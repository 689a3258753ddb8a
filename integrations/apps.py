from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """API keys, idempotency, throttling and outbound webhooks for integrators.

    A platform app like `chatsite`: every other app may import it; it imports none of them.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations"
