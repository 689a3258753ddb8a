"""Input and output shapes of the conversations API; no business rules here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.selectors import ConversationStateData

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
    code = serializers.CharField(max_length=32, trim_whitespace=True)


class PickupRedeemOutputSerializer(serializers.Serializer):
    conversation_id = serializers.UUIDField()
    url = serializers.CharField()
