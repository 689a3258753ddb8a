"""Staff console for API keys: create (the key is shown once), revoke, see last use."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from integrations.keys import api_key_create, api_key_revoke, scopes_clean
from integrations.models import ApiKey, Scope


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = ApiKey
        fields = ["name", "owner", "scopes", "rate_limit", "expires_at"]

    def clean_scopes(self) -> list[str]:
        try:
            return scopes_clean(self.cleaned_data["scopes"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["scopes"]) from exc


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "owner", "scope_list", "status", "last_used_at", "created_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="Status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is not None:
            # A key's owner and scopes are fixed once it exists: make a new key instead.
            return [*self.readonly_fields, "owner", "scopes"]
        return self.readonly_fields

    def get_form(self, request: HttpRequest, obj: ApiKey | None = None, **kwargs: Any) -> Any:
        if obj is not None:
            kwargs["fields"] = ["name", "rate_limit", "expires_at"]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        made = api_key_create(
            owner=form.cleaned_data["owner"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data.get("expires_at"),
            rate_limit=form.cleaned_data.get("rate_limit"),
            created_by=request.user,
        )
        obj.pk = made.api_key.pk
        obj.prefix = made.api_key.prefix
        messages.warning(
            request,
            f"The new API key is {made.raw} — copy it now: it is stored only as a hash and "
            "will not be shown again.",
        )

    @admin.action(description="Revoke the selected keys (refused from the next request on)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            api_key_revoke(api_key)
        self.message_user(request, f"Revoked {len(keys)} key(s).")

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the record of who had access stays


from integrations import webhooks_admin  # noqa: E402,F401
