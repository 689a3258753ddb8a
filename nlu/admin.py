"""Staff define intents, their reply and their slots here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from chatsite.exceptions import ApplicationError
from nlu.exceptions import ImportFileInvalid
from nlu.exchange.formats import Format
from nlu.exchange.forms import ExamplesImportForm, IntentExampleForm
from nlu.exchange.services import examples_export, examples_import_file
from nlu.models import Intent, IntentExample, ReviewItem, ReviewStatus, SlotDefinition
from nlu.review import (
    review_accept,
    review_accept_all,
    review_correct,
    review_dismiss,
    review_dismiss_all,
)
from nlu.services import intent_template_errors, intent_templates
from nlu.templates import template_placeholders

# Showing every bad row of a huge file helps nobody; the first ones show the pattern.
MAX_INVALID_SHOWN = 200


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
    form = IntentExampleForm
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

    actions = ["export_examples_csv", "export_examples_jsonl", "export_examples_rasa"]

    def get_urls(self) -> list[URLPattern | URLResolver]:
        view = path(
            "import-examples/",
            self.admin_site.admin_view(self.examples_import_view),
            name="nlu_intent_import_examples",
        )
        # Before the defaults: their "<path:object_id>/" catch-all would match this URL too.
        return [view, *super().get_urls()]

    def examples_import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a file of examples; show what was (or, in a dry run, would be) imported."""
        if not request.user.has_perm("nlu.add_intentexample"):
            raise PermissionDenied
        form = ExamplesImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if data["create_intents"] and not request.user.has_perm("nlu.add_intent"):
                form.add_error("create_intents", "You may not create intents.")
            else:
                try:
                    report = examples_import_file(
                        data=data["file"].read(),
                        filename=data["file"].name,
                        fmt=Format(data["format"]) if data["format"] else None,
                        languages=data["languages"],
                        create_intents=data["create_intents"],
                        dry_run=data["dry_run"],
                    )
                except ImportFileInvalid as exc:
                    form.add_error("file", exc.message)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import examples",
            "opts": self.opts,
            "form": form,
            "report": report,
            "invalid_shown": report.invalid[:MAX_INVALID_SHOWN] if report else [],
        }
        return TemplateResponse(request, "admin/nlu/intent/import_examples.html", context)

    @admin.action(description="Export examples as CSV", permissions=["view"])
    def export_examples_csv(self, request: HttpRequest, queryset: QuerySet[Intent]) -> HttpResponse:
        return _export_response(Format.CSV, queryset)

    @admin.action(description="Export examples as JSONL", permissions=["view"])
    def export_examples_jsonl(
        self, request: HttpRequest, queryset: QuerySet[Intent]
    ) -> HttpResponse:
        return _export_response(Format.JSONL, queryset)

    @admin.action(description="Export examples as Rasa YAML", permissions=["view"])
    def export_examples_rasa(
        self, request: HttpRequest, queryset: QuerySet[Intent]
    ) -> HttpResponse:
        return _export_response(Format.RASA, queryset)


def _export_response(fmt: Format, queryset: QuerySet[Intent]) -> HttpResponse:
    """The examples of the selected intents as a file download."""
    export = examples_export(fmt=fmt, intent_ids=list(queryset.values_list("pk", flat=True)))
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@admin.register(IntentExample)
class IntentExampleAdmin(admin.ModelAdmin):
    """All examples across intents: find, edit, move and delete them in bulk."""

    form = IntentExampleForm
    list_display = ("text", "intent", "entity_count", "created_at")
    list_filter = ("intent",)
    search_fields = ("text",)
    list_select_related = ("intent",)
    readonly_fields = ("created_at",)
    list_per_page = 100

    @admin.display(description="entities")
    def entity_count(self, obj: IntentExample) -> int:
        return len(obj.entities or [])


class ReviewStatusFilter(admin.SimpleListFilter):
    """Status, open by default: the queue is what is left to do."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*ReviewStatus.choices, ("all", "All")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ReviewItem]) -> QuerySet:
        value = self.value() or ReviewStatus.OPEN
        return queryset if value == "all" else queryset.filter(status=value)

    def choices(self, changelist: Any) -> Any:
        current = self.value() or ReviewStatus.OPEN
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


_RESOLVE_VERBS = ("accept", "correct", "dismiss")


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    """Utterances the classifier was unsure about: accept the LLM's label, correct or dismiss."""

    list_filter = (ReviewStatusFilter, "suggested_intent")
    search_fields = ("text",)
    list_select_related = ("resolved_intent",)
    actions = ["accept_suggestions", "dismiss_items"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_accept_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return self.has_change_permission(request) and user.has_perm("nlu.add_intentexample")

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        return (
            "text",
            "model_scores",
            "suggested_intent",
            "seen_count",
            "age",
            "outcome",
            self._buttons_column(request),
        )

    @admin.display(description="model's top intents")
    def model_scores(self, obj: ReviewItem) -> str:
        pairs = [p for p in obj.top or [] if isinstance(p, list | tuple) and len(p) >= 2]
        return " · ".join(f"{name} {float(conf):.2f}" for name, conf, *_ in pairs) or "–"

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: ReviewItem) -> str:
        return timesince(obj.created_at).split(",")[0]

    @admin.display(description="status", ordering="status")
    def outcome(self, obj: ReviewItem) -> str:
        if obj.status == ReviewStatus.OPEN or obj.resolved_intent is None:
            return obj.get_status_display()
        return f"{obj.get_status_display()}: {obj.resolved_intent.name}"

    def _buttons_column(self, request: HttpRequest) -> Callable[[ReviewItem], str]:
        """The per-row buttons, bound to this request (its filters, the user's permissions)."""
        may_change = self.has_change_permission(request)
        may_add = self.has_accept_permission(request)
        filters = request.GET.urlencode()
        query = "?" + urlencode({"_changelist_filters": filters}) if filters else ""
        options: list[str] = []  # the active intents, fetched once per page

        def intent_options() -> str:
            if not options:
                intents = Intent.objects.filter(active=True).values_list("pk", "name")
                options.append(format_html_join("", '<option value="{}">{}</option>', intents))
            return options[0]

        @admin.display(description="review")
        def review(obj: ReviewItem) -> str:
            if obj.status != ReviewStatus.OPEN or not may_change:
                return ""

            # Buttons of the changelist form (a row cannot hold a form of its own): each posts
            # that form, CSRF token included, to the resolve view instead.
            def button(verb: str, label: str) -> str:
                url = reverse("admin:nlu_reviewitem_resolve", args=[obj.pk, verb]) + query
                return format_html(
                    '<button type="submit" class="button" formaction="{}" formmethod="post" '
                    "formnovalidate>{}</button>",
                    url,
                    label,
                )

            parts = []
            if may_add and obj.suggested_intent:
                parts.append(button("accept", f"Accept {obj.suggested_intent}"))
            parts.append(button("dismiss", "Dismiss"))
            if may_add:
                parts.append(
                    format_html(
                        '<select name="correct_intent_{}" aria-label="Correct to">'
                        '<option value="">Correct…</option>{}</select>',
                        obj.pk,
                        intent_options(),
                    )
                )
                parts.append(button("correct", "Correct"))
            return format_html_join(" ", "{}", ((p,) for p in parts))

        return review

    def get_urls(self) -> list[URLPattern | URLResolver]:
        resolve = path(
            "<path:object_id>/resolve/<str:verb>/",
            self.admin_site.admin_view(require_POST(self.resolve_view)),
            name="nlu_reviewitem_resolve",
        )
        return [resolve, *super().get_urls()]

    def resolve_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        """POST only: accept, correct or dismiss one item, then back to the list."""
        item = self.get_object(request, unquote(object_id))
        if item is None or verb not in _RESOLVE_VERBS:
            raise Http404("No such review item.")
        if not self.has_change_permission(request, item):
            raise PermissionDenied
        if verb != "dismiss" and not self.has_accept_permission(request):
            raise PermissionDenied
        try:
            if verb == "accept":
                item = review_accept(item, user=request.user)
            elif verb == "dismiss":
                item = review_dismiss(item, user=request.user)
            else:
                intent = _chosen_intent(request.POST.get(f"correct_intent_{item.pk}", ""))
                if intent is None:
                    raise ApplicationError("Choose an intent, then Correct.", code="no_intent")
                item = review_correct(item, intent=intent, user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            target = f" → {item.resolved_intent.name}" if item.resolved_intent else ""
            self.message_user(request, f"{item.get_status_display()}: {item.text[:60]}{target}")
        url = reverse("admin:nlu_reviewitem_changelist")
        filters = request.GET.get("_changelist_filters", "")
        return HttpResponseRedirect(f"{url}?{filters}" if filters else url)

    @admin.action(description="Accept the suggestions", permissions=["accept"])
    def accept_suggestions(self, request: HttpRequest, queryset: QuerySet[ReviewItem]) -> None:
        result = review_accept_all(
            items=queryset.filter(status=ReviewStatus.OPEN), user=request.user
        )
        self._report(request, "Accepted", result.done, result.errors)

    @admin.action(description="Dismiss", permissions=["change"])
    def dismiss_items(self, request: HttpRequest, queryset: QuerySet[ReviewItem]) -> None:
        result = review_dismiss_all(
            items=queryset.filter(status=ReviewStatus.OPEN), user=request.user
        )
        self._report(request, "Dismissed", result.done, result.errors)

    def _report(self, request: HttpRequest, verb: str, done: int, errors: list[str]) -> None:
        self.message_user(request, f"{verb} {done} item(s).")
        if errors:
            shown = "; ".join(errors[:5]) + (
                f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
            )
            self.message_user(request, f"Not done: {shown}", level=messages.WARNING)


def _chosen_intent(raw: str) -> Intent | None:
    """The intent picked in a row's select; None when nothing (or nonsense) was chosen."""
    return Intent.objects.filter(pk=int(raw)).first() if raw.isdigit() else None


# The classifiers' console and the sensitive words live in their own modules; importing them
# registers them with the admin.
from nlu import classifier_admin, moderation_admin  # noqa: E402, F401
