"""API keys and idempotency records (webhooks: further down)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import models


class Scope(models.TextChoices):
    """What an API key may do; a key holds one or more."""

    CHAT = "chat", "Chat: conversations, messages, end-user export and erasure"
    NLU = "nlu", "NLU: parse text into intents and entities"
    ADMIN_DATA = "admin-data", "Admin data: intents, examples, sensitive words, models"


class ApiKey(models.Model):
    """A secret an integrator sends as `Authorization: Bearer <key>`; only its hash is stored.

    The key acts for its `owner`: it sees that user's conversations and no one else's.
    """

    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'CRM production'.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The tenant account the key acts for: it sees only this user's conversations.",
    )
    # The first characters of the key, kept in clear so staff can tell keys apart.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    # SHA-256 of the whole key. Keys carry 256 random bits, so a fast hash is enough: nothing
    # to brute-force, and a lookup by hash is one indexed query.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    # Requests per minute; empty: the API_RATE_LIMIT_PER_MINUTE setting.
    rate_limit = models.PositiveIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an `Idempotency-Key`, replayed to its retries."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # "POST /api/v1/conversations": the same key on another endpoint is a client bug (422).
    endpoint = models.CharField(max_length=300)
    # SHA-256 of the request body in canonical JSON: the same key with another body is refused.
    fingerprint = models.CharField(max_length=64)
    # Empty while the first request is still running.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.endpoint}"


class WebhookEvent(models.TextChoices):
    """What a webhook can listen to; the value is the `event` of each delivery."""

    MESSAGE_CREATED = "message.created", "message.created: a user message and its reply"
    CONVERSATION_CLOSED = "conversation.closed", "conversation.closed: a conversation was closed"
    INTENT_LOW_CONFIDENCE = (
        "intent.low_confidence",
        "intent.low_confidence: the classifier was unsure of a message",
    )


class Webhook(models.Model):
    """A URL staff registered to receive events by signed HTTP POST."""

    url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where events are POSTed (https:// in production).",
    )
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event names it receives.")
    # Signs every delivery (HMAC-SHA256); stored in clear because signing needs it, and shown
    # to staff so they can configure their receiver.
    secret = models.CharField(max_length=64, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # A tenant's webhook must never outlive the tenant: with SET_NULL it would start
        # receiving every tenant's events.
        on_delete=models.CASCADE,
        related_name="webhooks",
        help_text="Only events about this user's conversations; empty: every event.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.description or self.url


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one webhook: its payload, and how the attempts to send it went."""

    # Sent as `Chatsite-Delivery` and as the body's `id`: receivers dedupe retries on it.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64, choices=WebhookEvent.choices)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(
        max_length=16, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # "HTTP 500", "timeout", "connection refused": a short reason, never a stack trace.
    last_error = models.CharField(max_length=200, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        # The sweeper's query: pending deliveries overdue (integrations.webhooks).
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.status})"
