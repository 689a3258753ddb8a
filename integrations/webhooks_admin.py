"""Staff console for outbound webhooks: register URLs, copy secrets, watch and resend deliveries."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.html import format_html

from integrations.models import Webhook, WebhookDelivery, WebhookEvent
from integrations.webhooks import deliveries_redeliver, webhook_save


class WebhookForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text=Webhook._meta.get_field("url").help_text,
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = Webhook
        fields = ["url", "description", "events", "owner", "is_active"]


def _latest(field: str) -> Subquery:
    """The webhook's newest delivery's `field`, as a subquery of the list's one SELECT."""
    newest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-created_at", "-pk")
    return Subquery(newest.values(field)[:1])


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = [
        "url",
        "description",
        "owner",
        "event_list",
        "is_active",
        "last_delivery",
        "last_delivery_at",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["url", "description", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["secret", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Webhook]:
        # Last delivery status per row without a query per row (N+1).
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_status=_latest("status"),
                last_code=_latest("last_status_code"),
                last_at=_latest("created_at"),
            )
        )

    def get_fields(self, request: HttpRequest, obj: Webhook | None = None) -> list[str]:
        fields = ["url", "description", "events", "owner", "is_active"]
        # The secret exists once the webhook is saved; it is made for staff to copy.
        return [*fields, "secret", "created_at"] if obj is not None else fields

    @admin.display(description="Events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events)

    @admin.display(description="Last delivery")
    def last_delivery(self, obj: Webhook) -> str:
        status = getattr(obj, "last_status", None)
        if status is None:
            return "–"
        code = getattr(obj, "last_code", None)
        return f"{status} (HTTP {code})" if code else status

    @admin.display(description="Last event at", ordering="last_at")
    def last_delivery_at(self, obj: Webhook) -> Any:
        return getattr(obj, "last_at", None)

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        webhook_save(obj)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event",
        "webhook",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event"]
    search_fields = ["=public_id", "webhook__url"]
    list_select_related = ["webhook"]
    date_hierarchy = "created_at"
    fields = [
        "public_id",
        "webhook",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "payload_pretty",
    ]
    readonly_fields = fields
    actions = ["redeliver"]

    @admin.display(description="Payload")
    def payload_pretty(self, obj: WebhookDelivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.action(description="Redeliver now (from the first attempt)", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = deliveries_redeliver(queryset.values_list("pk", flat=True))
        self.message_user(request, f"Queued {count} delivery(ies) again.")

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("integrations.change_webhookdelivery")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from events only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of what was sent; "Redeliver now" is the one thing to do
