"""Staff console for conversations (review tools grow in issue 10)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from conversations import services
from conversations.exceptions import PersonalDataUnreadable, RevealNotPermitted, SlotNotFound
from conversations.models import (
    AssistantProfile,
    Conversation,
    ConversationTransition,
    EndUserDataRequest,
    FallbackReply,
    Message,
    MessageRole,
    PersonalDataReveal,
    SlotChange,
    SlotValue,
)
from conversations.reveal import REVEAL_PERMISSION, slot_reveal


class ReadOnlyInline(admin.TabularInline):
    """History shown to staff as it happened: nothing added, edited or deleted here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    fields = (
        "sequence",
        "role",
        "text",
        "intent",
        "intent_source",
        "intent_scores",
        "nlu_ms",
        "status",
        "error_code",
        "flagged",
        "moderation",
        "ttft_ms",
        "total_ms",
        "token_count",
    )
    ordering = ("sequence",)


class TransitionInline(ReadOnlyInline):
    model = ConversationTransition
    fields = ("at", "from_state", "to_state", "reason")
    ordering = ("at", "pk")


class SlotValueInline(ReadOnlyInline):
    """Slots as staff may see them: masked; the value only through an audited reveal."""

    model = SlotValue
    fields = ("name", "kind", "masked", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SlotValue]:
        # Not even loaded (so not decrypted) for the page: a wrong key cannot break it either.
        return super().get_queryset(request).defer("value")

    def get_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        fields = tuple(super().get_fields(request, obj))
        return (*fields, "reveal") if request.user.has_perm(REVEAL_PERMISSION) else fields

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        return self.get_fields(request, obj)

    @admin.display(description="reveal")
    def reveal(self, obj: SlotValue) -> str:
        # A button of the change form (an inline cannot hold a nested <form>): it posts that
        # form, with its CSRF token, to the reveal view instead of saving the conversation.
        url = reverse(
            "admin:conversations_conversation_slot_reveal", args=[obj.conversation_id, obj.pk]
        )
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            "formnovalidate>Reveal</button>",
            url,
        )


class SlotChangeInline(ReadOnlyInline):
    model = SlotChange
    fields = ("at", "name", "old_masked", "new_masked")


class FlaggedFilter(admin.SimpleListFilter):
    """Conversations with a message that holds a sensitive word listed with the `flag` action."""

    title = "flagged for review"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Has a flagged message")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet:
        if self.value() == "yes":
            flagged = Message.objects.filter(flagged=True).values("conversation_id")
            return queryset.filter(pk__in=flagged)
        return queryset


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "title", "user", "end_user", "state", "last_active", "closed_at")
    list_filter = ("state", FlaggedFilter)
    search_fields = ("public_id", "title", "end_user")
    list_select_related = ("user",)
    readonly_fields = (
        "public_id",
        "user",
        "session_key",
        "end_user",
        "state",
        "intent",
        "context",
        "created_at",
        "last_active",
        "closed_at",
    )
    inlines = [MessageInline, SlotValueInline, SlotChangeInline, TransitionInline]
    actions = ["relabel"]

    @admin.action(description="Re-label the user messages with the serving intent classifier")
    def relabel(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        from conversations.relabel import relabel_batches
        from conversations.tasks import relabel_messages_batch_task

        ids = list(
            Message.objects.filter(conversation__in=queryset, role=MessageRole.USER)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        batches = relabel_batches(ids)
        for batch in batches:
            relabel_messages_batch_task.delay(batch)
        self.message_user(
            request,
            f"Re-labelling {len(ids)} messages in {len(batches)} batches on the nlu queue.",
            messages.SUCCESS,
        )

    def get_urls(self) -> list[URLPattern | URLResolver]:
        reveal = path(
            "<path:object_id>/slots/<int:slot_id>/reveal/",
            self.admin_site.admin_view(require_POST(self.slot_reveal_view)),
            name="conversations_conversation_slot_reveal",
        )
        # Before the defaults: their "<path:object_id>/" catch-all would match this URL too.
        return [reveal, *super().get_urls()]

    def slot_reveal_view(self, request: HttpRequest, object_id: str, slot_id: int) -> HttpResponse:
        """POST only: show one decrypted slot value; slot_reveal checks and records it."""
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404("No such conversation.")
        if not self.has_view_or_change_permission(request, conversation):
            raise PermissionDenied
        change_url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
        try:
            value = slot_reveal(slot_id=slot_id, user=request.user, conversation_id=conversation.pk)
        except RevealNotPermitted:
            raise PermissionDenied from None
        except SlotNotFound:
            raise Http404("No such slot in this conversation.") from None
        except PersonalDataUnreadable as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(change_url)
        slot_name = conversation.slots.filter(pk=slot_id).values_list("name", flat=True).first()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Revealed: {slot_name}",
            "opts": self.opts,
            "original": conversation,
            "slot_name": slot_name,
            "value": value,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/conversations/slot_reveal.html", context)


@admin.register(FallbackReply)
class FallbackReplyAdmin(admin.ModelAdmin):
    """The static reply shown when the model fails or times out, per language."""

    list_display = ("language", "text", "updated_at")


@admin.register(AssistantProfile)
class AssistantProfileAdmin(admin.ModelAdmin):
    """The system prompt; one profile, saved through the service so every process sees it."""

    list_display = ("__str__", "updated_at")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return not AssistantProfile.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        services.assistant_profile_save(obj)


class AuditAdmin(admin.ModelAdmin):
    """An audit trail: viewable; never added, edited or deleted, even by a superuser."""

    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(PersonalDataReveal)
class PersonalDataRevealAdmin(AuditAdmin):
    """Who saw a decrypted personal value, and when."""

    list_display = ("at", "username", "conversation_public_id", "slot_name")
    list_filter = ("username", "at")
    search_fields = ("conversation_public_id",)


@admin.register(EndUserDataRequest)
class EndUserDataRequestAdmin(AuditAdmin):
    """End-user exports and erasures (API or staff)."""

    list_display = ("at", "action", "end_user", "owner_username", "requested_by", "conversations")
    list_filter = ("action", "at")
    search_fields = ("end_user", "owner_username", "requested_by")
