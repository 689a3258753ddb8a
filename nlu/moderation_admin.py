"""Staff keep the sensitive-word list here: edit, import, export, and try a text against it.

Every write goes through nlu.moderation.services, which tells every process to rebuild its
matcher; the "Try a text" page builds its own matcher from the database, so it shows the list as
saved this very moment.
"""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.html import format_html

from nlu.exceptions import ImportFileInvalid
from nlu.exchange.forms import checked_upload
from nlu.models import SensitiveWord, SensitiveWordAction, SensitiveWordCategory
from nlu.moderation.registry import build_matcher
from nlu.moderation.seeds import seed_sources
from nlu.moderation.services import (
    MAX_FILE_BYTES,
    FileFormat,
    export_filename,
    sensitive_word_clean,
    sensitive_word_create,
    sensitive_word_delete,
    sensitive_word_update,
    sensitive_words_delete,
    sensitive_words_export,
    sensitive_words_import,
    sensitive_words_set_action,
    sensitive_words_set_active,
)

# Showing every bad line of a huge file helps nobody; the first ones show the pattern.
MAX_ERRORS_SHOWN = 200
MAX_TRY_CHARS = 10_000
_EDITABLE = ("word", "category", "action", "language", "is_active", "note")
_CONTENT_TYPES = {"txt": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8"}


class SensitiveWordForm(forms.ModelForm):
    """Checks the word as the service will (normalised form, uniqueness) so errors show here."""

    class Meta:
        model = SensitiveWord
        fields = _EDITABLE

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            values = sensitive_word_clean(
                word=data.get("word") or "",
                category=data.get("category") or "",
                action=data.get("action") or "",
                language=data.get("language") or "",
                note=data.get("note") or "",
                exclude_pk=self.instance.pk,
            )
        except ValidationError as exc:
            for name, errors in exc.error_dict.items():
                self.add_error(name if name in self.fields else None, errors)
            return data
        data.update({k: v for k, v in values.items() if k in self.fields})
        return data


class WordsImportForm(forms.Form):
    file = forms.FileField(
        help_text=".txt with one word per line (lines starting with “# ” are comments), or "
        ".csv with a header: word, and optionally category, action, language, active, note. "
        f"UTF-8, at most {MAX_FILE_BYTES // 2**20} MB."
    )
    format = forms.ChoiceField(
        choices=[("", "From the file name"), ("txt", "Text, one word per line"), ("csv", "CSV")],
        required=False,
    )
    category = forms.ChoiceField(
        choices=SensitiveWordCategory.choices,
        initial=SensitiveWordCategory.ABUSE,
        help_text="For words whose line gives none (every word of a .txt file).",
    )
    action = forms.ChoiceField(
        choices=SensitiveWordAction.choices,
        initial=SensitiveWordAction.MASK,
        help_text="For words whose line gives none.",
    )
    language = forms.CharField(
        required=False, max_length=16, help_text='e.g. "en" or "zh"; empty: any language.'
    )
    dry_run = forms.BooleanField(
        label="Dry run", required=False, initial=True, help_text="Report only; write nothing."
    )

    def clean_file(self) -> Any:
        return checked_upload(self.cleaned_data["file"], MAX_FILE_BYTES)


class TryTextForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        max_length=MAX_TRY_CHARS,
        strip=False,
        help_text="Checked against the active words as saved now.",
    )


@admin.register(SensitiveWord)
class SensitiveWordAdmin(admin.ModelAdmin):
    form = SensitiveWordForm
    change_list_template = "admin/nlu/sensitiveword/change_list.html"
    list_display = (
        "word",
        "category",
        "action",
        "language",
        "is_active",
        "source_shown",
        "updated_at",
    )
    list_filter = ("category", "action", "language", "is_active", "source")
    search_fields = ("word", "normalised", "note")
    fields = (*_EDITABLE, "normalised", "source", "created_at", "updated_at")
    readonly_fields = ("normalised", "source", "created_at", "updated_at")
    list_per_page = 100
    actions = [
        "activate",
        "deactivate",
        "set_action_block",
        "set_action_mask",
        "set_action_flag",
        "export_txt",
        "export_csv",
    ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        may_import = self.has_add_permission(request) and self.has_change_permission(request)
        return super().changelist_view(request, {**(extra_context or {}), "may_import": may_import})

    @admin.display(description="source", ordering="source")
    def source_shown(self, obj: SensitiveWord) -> str:
        # The seed lists' licences (CC BY 4.0, MIT) ask for attribution: name the list and link it.
        source = seed_sources().get(obj.source)
        if source is None or not source.url:
            return obj.source
        return format_html(
            '<a href="{}" title="{} ({})" rel="noopener noreferrer">{}</a>',
            source.url,
            source.name,
            source.licence,
            obj.source,
        )

    # --- writes through the services ---------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: SensitiveWord, form: Any, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in _EDITABLE}
        if change:
            # The form has already copied its values onto obj: the service compares with the row.
            saved = sensitive_word_update(
                sensitive_word=SensitiveWord.objects.get(pk=obj.pk), **values
            )
        else:
            saved = sensitive_word_create(**values, source="staff")
        for model_field in SensitiveWord._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(saved, model_field.attname))
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: SensitiveWord) -> None:
        sensitive_word_delete(sensitive_word=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        sensitive_words_delete(queryset=queryset)

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        count = sensitive_words_set_active(queryset=queryset, is_active=True)
        self.message_user(request, f"Activated {count} word(s).", messages.SUCCESS)

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        count = sensitive_words_set_active(queryset=queryset, is_active=False)
        self.message_user(request, f"Deactivated {count} word(s).", messages.SUCCESS)

    @admin.action(description="Set action: block the message", permissions=["change"])
    def set_action_block(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        self._set_action(request, queryset, SensitiveWordAction.BLOCK)

    @admin.action(description="Set action: mask the word", permissions=["change"])
    def set_action_mask(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        self._set_action(request, queryset, SensitiveWordAction.MASK)

    @admin.action(description="Set action: flag for review", permissions=["change"])
    def set_action_flag(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> None:
        self._set_action(request, queryset, SensitiveWordAction.FLAG)

    def _set_action(
        self, request: HttpRequest, queryset: QuerySet[SensitiveWord], action: str
    ) -> None:
        count = sensitive_words_set_action(queryset=queryset, action=action)
        label = SensitiveWordAction(action).label.lower()
        self.message_user(request, f"{count} word(s) now {label}.", messages.SUCCESS)

    @admin.action(description="Export as text (one word per line)", permissions=["view"])
    def export_txt(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> HttpResponse:
        return _export_response("txt", queryset)

    @admin.action(description="Export as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[SensitiveWord]) -> HttpResponse:
        return _export_response("csv", queryset)

    # --- pages of their own -----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern | URLResolver]:
        wrap = self.admin_site.admin_view
        views = [
            path("import/", wrap(self.import_view), name="nlu_sensitiveword_import"),
            path("export/<str:fmt>/", wrap(self.export_view), name="nlu_sensitiveword_export"),
            path("try/", wrap(self.try_view), name="nlu_sensitiveword_try"),
        ]
        # Before the defaults: their "<path:object_id>/" catch-all would match these URLs too.
        return [*views, *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a .txt or .csv of words; show what was (or, in a dry run, would be) imported."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied  # an import adds words and may change listed ones
        form = WordsImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            fmt: FileFormat | None = data["format"] or None
            try:
                report = sensitive_words_import(
                    data=data["file"].read(),
                    filename=data["file"].name,
                    fmt=fmt,
                    category=data["category"],
                    action=data["action"],
                    language=data["language"],
                    dry_run=data["dry_run"],
                )
            except ImportFileInvalid as exc:
                form.add_error("file", exc.message)
            except ValidationError as exc:
                for name, errors in exc.error_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import sensitive words",
            "opts": self.opts,
            "form": form,
            "report": report,
            "errors_shown": report.errors[:MAX_ERRORS_SHOWN] if report else [],
        }
        return TemplateResponse(request, "admin/nlu/sensitiveword/import.html", context)

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponse:
        """Every word as a download (.txt or .csv); the actions export a selection."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in _CONTENT_TYPES:
            return HttpResponse("Unknown format: use txt or csv.", status=404)
        return _export_response(fmt, None)  # type: ignore[arg-type]

    def try_view(self, request: HttpRequest) -> HttpResponse:
        """Paste a text, see what moderation makes of it with the words as saved now."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TryTextForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            text = form.cleaned_data["text"]
            started = time.perf_counter()
            matcher = build_matcher()  # straight from the database: no wait for the registry
            built = time.perf_counter()
            verdict = matcher.apply(text)
            result = {
                "verdict": verdict,
                "hits": [
                    {
                        "text": text[hit.start : hit.end],
                        "start": hit.start,
                        "end": hit.end,
                        "category": _label(SensitiveWordCategory, hit.category),
                        "action": _label(SensitiveWordAction, str(hit.action)),
                    }
                    for hit in verdict.hits
                ],
                "build_ms": round((built - started) * 1000, 1),
                "apply_ms": round((time.perf_counter() - built) * 1000, 2),
                "active_words": SensitiveWord.objects.filter(is_active=True).count(),
            }
        context = {
            **self.admin_site.each_context(request),
            "title": "Try a text",
            "opts": self.opts,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/nlu/sensitiveword/try.html", context)


def _label(choices: type[Any], value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _export_response(fmt: FileFormat, queryset: QuerySet[SensitiveWord] | None) -> HttpResponse:
    """The words as a file download."""
    content = sensitive_words_export(queryset=queryset, fmt=fmt)
    response = HttpResponse(content.encode("utf-8"), content_type=_CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{export_filename(fmt)}"'
    return response
