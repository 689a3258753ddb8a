"""Input and output shapes of the conversations API; no business rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.selectors import ConversationStateData
from nlu.api.fields import NOT_BLANK, SchemaPattern, StrictCharField, UserTextField

MESSAGES_DEFAULT = 20
MESSAGES_MAX = 100


class StateQuerySerializer(serializers.Serializer):
    messages = serializers.IntegerField(
        required=False, default=MESSAGES_DEFAULT, min_value=0, max_value=MESSAGES_MAX
    )


class SlotOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    # Always the masked form (139****5678); the decrypted value never leaves the admin.
    value = serializers.CharField(source="masked")


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    role = serializers.CharField()
    text = serializers.CharField()
    sequence = serializers.IntegerField()
    status = serializers.CharField()
    is_fallback = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class MessageDetailSerializer(MessageOutputSerializer):
    """A message as the integration API shows it (texts as stored: personal data masked)."""

    client_id = serializers.UUIDField(allow_null=True)
    source = serializers.CharField(help_text="web, api or voice (user messages)")
    reply_to = serializers.UUIDField(source="reply_to.public_id", allow_null=True, default=None)
    intent = serializers.CharField(help_text="The user message's intent, as recognised")
    error_code = serializers.CharField(help_text="Why a reply is a fallback or was interrupted")
    token_count = serializers.IntegerField()
    ttft_ms = serializers.IntegerField(allow_null=True)
    total_ms = serializers.IntegerField(allow_null=True)


class StateOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="conversation.public_id")
    state = serializers.CharField(source="conversation.state")
    intent = serializers.CharField(source="conversation.intent")
    awaiting_slot = serializers.SerializerMethodField()
    confirming = serializers.SerializerMethodField()
    last_active = serializers.DateTimeField(source="conversation.last_active")
    slots = SlotOutputSerializer(many=True)
    messages = MessageOutputSerializer(many=True)

    def get_awaiting_slot(self, data: ConversationStateData) -> str | None:
        return _context(data).get("awaiting") or None

    def get_confirming(self, data: ConversationStateData) -> bool:
        return bool(_context(data).get("confirming"))


def _context(data: ConversationStateData) -> dict[str, Any]:
    context = data.conversation.context
    return context if isinstance(context, dict) else {}


class PickupCodeOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()


class PickupRedeemInputSerializer(serializers.Serializer):
    code = StrictCharField(
        max_length=32, trim_whitespace=True, validators=[SchemaPattern(NOT_BLANK)]
    )


class PickupRedeemOutputSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    url = serializers.CharField()


# --- Integration API -----------------------------------------------------------------------


class ConversationCreateInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    end_user = StrictCharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Your id for the person (e.g. a CRM id): export and erasure look it up",
    )


class ConversationListQuerySerializer(serializers.Serializer):
    end_user = serializers.CharField(max_length=200, required=False)


class ConversationOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    end_user = serializers.CharField()
    state = serializers.CharField()
    intent = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_active = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class MessagePostInputSerializer(serializers.Serializer):
    # Length and emptiness are checked by the same service as the WebSocket's, with the same
    # codes (message_too_long, empty_message), so not by this field.
    text = UserTextField(trim_whitespace=False)
    client_id = serializers.UUIDField(
        required=False,
        help_text="Your id for this message: a retry with the same id returns the same turn "
        "(an Idempotency-Key header does the same)",
    )


class MessagePostQuerySerializer(serializers.Serializer):
    stream = serializers.BooleanField(required=False, default=False)


class ReplyEventsQuerySerializer(serializers.Serializer):
    after_seq = serializers.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, help_text="Same as Last-Event-ID"
    )


class TurnOutputSerializer(serializers.Serializer):
    message = MessageDetailSerializer()
    reply = MessageDetailSerializer()


class EndUserErasedSerializer(serializers.Serializer):
    end_user = serializers.CharField()
    conversations = serializers.IntegerField()
    messages = serializers.IntegerField()


class ExportMessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    sequence = serializers.IntegerField()
    role = serializers.CharField()
    text = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class ExportSlotSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    value = serializers.CharField(help_text="Decrypted: the export is the person's own data")


class ExportConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    state = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_active = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    messages = ExportMessageSerializer(many=True)
    slots = ExportSlotSerializer(many=True)


class EndUserExportSerializer(serializers.Serializer):
    end_user = serializers.CharField()
    conversations = ExportConversationSerializer(many=True)
