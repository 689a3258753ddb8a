"""Staff define intents, their reply and their slots here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from nlu.models import Intent, IntentExample, SlotDefinition
from nlu.services import intent_template_errors, intent_templates
from nlu.templates import template_placeholders


class SlotInlineFormSet(forms.BaseInlineFormSet):
    """Checks the intent's templates against the slots as submitted (added, renamed, deleted)."""

    def clean(self) -> None:
        super().clean()
        names = {
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data.get("name") and not self._should_delete_form(form)
        }
        # self.instance is the intent built from the submitted form, templates included. A
        # template that does not parse is already reported on its own field (Intent.clean).
        templates = {}
        for field, text in intent_templates(self.instance).items():
            try:
                template_placeholders(text)
            except ValueError:
                continue
            templates[field] = text
        errors = intent_template_errors(templates=templates, slot_names=names)
        if errors:
            raise ValidationError(
                [f"{Intent._meta.get_field(f).verbose_name}: {m}" for f, m in errors.items()]
            )


class SlotDefinitionInline(admin.TabularInline):
    model = SlotDefinition
    formset = SlotInlineFormSet
    fields = (
        "order",
        "name",
        "label_en",
        "label_zh",
        "slot_type",
        "required",
        "is_personal_data",
        "prompt_en",
        "prompt_zh",
        "choices",
    )
    ordering = ("order", "id")
    extra = 0


class IntentExampleInline(admin.TabularInline):
    """Sentences users say for the intent: the classifier's training data and the LLM's examples."""

    model = IntentExample
    fields = ("text", "created_at")
    readonly_fields = ("created_at",)
    extra = 1


@admin.register(Intent)
class IntentAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "reply_mode", "active", "slot_count", "updated_at")
    list_filter = ("reply_mode", "active")
    search_fields = ("name", "display_name", "description")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "description", "active")}),
        ("Reply", {"fields": ("reply_mode", "response_template_en", "response_template_zh")}),
        ("Confirmation", {"fields": ("confirm_template_en", "confirm_template_zh")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    inlines = [SlotDefinitionInline, IntentExampleInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        # One COUNT per page in the same query, instead of one per row.
        return super().get_queryset(request).annotate(slot_count=Count("slots"))

    @admin.display(description="slots", ordering="slot_count")
    def slot_count(self, obj: Any) -> int:
        return int(obj.slot_count)
