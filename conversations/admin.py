"""Staff console for conversations (review tools grow in issue 10)."""

from __future__ import annotations

from django.contrib import admin

from conversations import services
from conversations.models import (
    AssistantProfile,
    Conversation,
    ConversationTransition,
    FallbackReply,
    Message,
    SlotChange,
    SlotValue,
)


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
        "status",
        "error_code",
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
    """Slots as staff may see them: masked, never the decrypted value."""

    model = SlotValue
    fields = ("name", "kind", "masked", "updated_at")


class SlotChangeInline(ReadOnlyInline):
    model = SlotChange
    fields = ("at", "name", "old_masked", "new_masked")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "title", "user", "state", "last_active", "created_at")
    list_filter = ("state",)
    search_fields = ("public_id", "title")
    list_select_related = ("user",)
    readonly_fields = (
        "public_id",
        "user",
        "session_key",
        "state",
        "intent",
        "context",
        "created_at",
        "last_active",
    )
    inlines = [MessageInline, SlotValueInline, SlotChangeInline, TransitionInline]


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
