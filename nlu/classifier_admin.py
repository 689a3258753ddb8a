"""The staff console for intent classifiers: train, read the evaluation, promote, roll back."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from chatsite.exceptions import ApplicationError
from nlu import training
from nlu.models import NluModel, NluModelStatus


@admin.register(NluModel)
class NluModelAdmin(admin.ModelAdmin):
    change_list_template = "admin/nlu/nlumodel/change_list.html"
    list_display = (
        "__str__",
        "status",
        "is_serving",
        "accuracy",
        "macro_f1",
        "example_count",
        "intent_count",
        "training_time",
        "created_at",
        "promoted_at",
    )
    list_filter = ("status", "is_serving")
    actions = ["promote"]
    fields = (
        "status",
        "is_serving",
        "recipe",
        "example_count",
        "intent_count",
        "training_time",
        "created_by",
        "created_at",
        "promoted_at",
        "error",
        "evaluation",
        "per_intent",
        "confusion_matrix",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # models come from training, not from a form

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        # The artifact and the image are blobs: the list never needs them.
        return super().get_queryset(request).defer("artifact", "confusion_png")

    # --- columns -------------------------------------------------------------------------------

    @admin.display(description="accuracy")
    def accuracy(self, obj: NluModel) -> str:
        return _percent(obj.metrics.get("accuracy"))

    @admin.display(description="macro-F1")
    def macro_f1(self, obj: NluModel) -> str:
        return _percent(obj.metrics.get("macro_f1"))

    @admin.display(description="training time")
    def training_time(self, obj: NluModel) -> str:
        return f"{obj.training_seconds:.1f} s" if obj.training_seconds is not None else "—"

    @admin.display(description="cross-validated evaluation")
    def evaluation(self, obj: NluModel) -> str:
        metrics = obj.metrics
        if not metrics:
            return "—"
        calibration = metrics.get("calibration") or {}
        return format_html(
            "{} folds over {} examples: accuracy {}, macro-F1 {}. At confidence ≥ {}: {} of "
            "messages, {} of them right (the rest go to the LLM).",
            metrics.get("folds", "?"),
            metrics.get("examples", obj.example_count),
            _percent(metrics.get("accuracy")),
            _percent(metrics.get("macro_f1")),
            calibration.get("threshold", 0.7),
            _percent(calibration.get("coverage")),
            _percent(calibration.get("precision")),
        )

    @admin.display(description="per intent")
    def per_intent(self, obj: NluModel) -> str:
        rows = (obj.metrics or {}).get("per_intent") or {}
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    _percent(m.get("precision")),
                    _percent(m.get("recall")),
                    _percent(m.get("f1")),
                    m.get("support", ""),
                )
                for name, m in sorted(rows.items(), key=lambda item: item[1].get("f1", 0))
            ),
        )
        return format_html(
            "<table><thead><tr><th>intent</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th>examples</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="confusion matrix")
    def confusion_matrix(self, obj: NluModel) -> str:
        if obj.pk is None or obj.status != NluModelStatus.READY:
            return "—"
        url = reverse("admin:nlu_nlumodel_confusion", args=[obj.pk])
        return format_html(
            '<a href="{0}"><img src="{0}" alt="Confusion matrix of {1}" '
            'style="max-width: 100%; height: auto"></a>',
            url,
            obj,
        )

    # --- actions -------------------------------------------------------------------------------

    def has_promote_permission(self, request: HttpRequest) -> bool:
        # Promoting is the one change staff make to a model: the "change" permission grants it.
        return request.user.has_perm("nlu.change_nlumodel")

    @admin.action(
        description="Promote the selected model (it serves from now on)",
        permissions=["promote"],
    )
    def promote(self, request: HttpRequest, queryset: Any) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model to promote.", messages.ERROR)
            return
        try:
            model = training.nlu_model_promote(queryset.get(), user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{model} now serves.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("train/", wrap(self.train_view), name="nlu_nlumodel_train"),
            path("rollback/", wrap(self.rollback_view), name="nlu_nlumodel_rollback"),
            path(
                "<int:pk>/confusion.png", wrap(self.confusion_view), name="nlu_nlumodel_confusion"
            ),
            *super().get_urls(),
        ]

    def _back(self) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:nlu_nlumodel_changelist"))

    def train_view(self, request: HttpRequest) -> HttpResponse:
        """Start training in the background (a Celery worker; in-process without a broker)."""
        if not self.has_view_permission(request) or not request.user.has_perm("nlu.add_nlumodel"):
            return HttpResponse(status=403)
        return require_POST(self._train)(request)

    def _train(self, request: HttpRequest) -> HttpResponse:
        model = training.nlu_model_train_start(user=request.user)
        if model.status == NluModelStatus.FAILED:
            self.message_user(
                request, f"{model} could not be trained: {model.error}", messages.ERROR
            )
        elif model.status == NluModelStatus.READY:
            self.message_user(
                request,
                f"{model} is trained; read its evaluation, then promote it.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request, f"{model} is training; reload this page to see it finish.", messages.INFO
            )
        return self._back()

    def rollback_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("nlu.change_nlumodel"):
            return HttpResponse(status=403)
        return require_POST(self._rollback)(request)

    def _rollback(self, request: HttpRequest) -> HttpResponse:
        try:
            model = training.nlu_model_rollback(user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: {model} serves again.", messages.SUCCESS)
        return self._back()

    def confusion_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        model = get_object_or_404(NluModel.objects.only("confusion_png"), pk=pk)
        if not model.confusion_png:
            return HttpResponse(status=404)
        response = HttpResponse(bytes(model.confusion_png), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
