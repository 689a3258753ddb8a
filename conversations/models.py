"""Conversations and their messages."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from conversations.fields import EncryptedTextField


class ConversationState(models.TextChoices):
    WAITING_INPUT = "waiting_input", "Waiting for input"
    RECOGNIZING_INTENT = "recognizing_intent", "Recognising intent"
    CALLING_AI = "calling_ai", "Calling the model"
    GENERATING = "generating", "Generating"
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Error"
    HANDOFF = "handoff", "Handed to a human"


class Conversation(models.Model):
    """One chat thread, owned by a signed-in user or by an anonymous browser session."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversations",
    )
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    # The integrator's own id for the person behind an API conversation (their CRM id, say):
    # what the API's end-user export and erasure look up, within the owner's conversations.
    end_user = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=200, blank=True)
    state = models.CharField(
        max_length=32, choices=ConversationState.choices, default=ConversationState.WAITING_INPUT
    )
    # The reply being written now, if any: one turn at a time, checked under the row lock with
    # no scan of the messages (bench/turn_cost.py: the same cost at 10,000 turns as at 10).
    streaming_reply = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the user is trying to do, and what the dialogue has gathered (issue 3 fills these).
    intent = models.CharField(max_length=100, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # The model remembers messages from this sequence on: after CHAT_SESSION_IDLE_MINUTES of
    # silence a new turn starts fresh (intent, context and prompt history), the history stays.
    memory_from_sequence = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_active = models.DateTimeField(auto_now_add=True, db_index=True)
    # Closed conversations keep their history but take no new messages (conversation_closed).
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_active"]
        indexes = [
            models.Index(
                fields=["user", "end_user"],
                condition=~Q(end_user=""),
                name="conversation_owner_end_user",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(session_key=""),
                name="conversation_has_owner",
            )
        ]

    def __str__(self) -> str:
        return self.title or str(self.public_id)


class MessageRole(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    STREAMING = "streaming", "Streaming"
    COMPLETE = "complete", "Complete"
    INTERRUPTED = "interrupted", "Interrupted"


class MessageSource(models.TextChoices):
    """Where a user message came from (the reply is the same whichever it was)."""

    WEB = "web", "Web chat"
    API = "api", "Integration API"
    VOICE = "voice", "Voice"


class Message(models.Model):
    """A user message or an assistant reply; replies are written once, when they end."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Position within the conversation: 1, 2, 3... (user and assistant messages interleave).
    sequence = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    text = models.TextField(blank=True)
    # The browser's id for a user message: a retried send finds the message it already made.
    client_id = models.UUIDField(null=True, blank=True)
    source = models.CharField(
        max_length=8, choices=MessageSource.choices, default=MessageSource.WEB, blank=True
    )
    reply_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reply"
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    # Set when the text is the static fallback reply, or when the stream broke off.
    error_code = models.CharField(max_length=64, blank=True)
    is_fallback = models.BooleanField(default=False)
    intent = models.CharField(max_length=100, blank=True)  # the user message's, as recognised
    # How it was recognised: model, llm, cache or dialogue (an answer to the bot's question needs
    # no classifier); the classifier's top intents [[name, confidence], ...]; milliseconds spent.
    intent_source = models.CharField(max_length=16, blank=True)
    intent_scores = models.JSONField(default=list, blank=True)
    nlu_ms = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(default=0)
    # Sensitive words found in it, as [{"category", "action", "count"}] (never the words), and
    # whether one of them asks staff to review it (the `flag` action).
    moderation = models.JSONField(default=list, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["conversation", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_client_id_unique_per_conversation",
            ),
            models.UniqueConstraint(
                fields=["conversation", "sequence"], name="message_sequence_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.sequence} in {self.conversation_id}"


class FallbackReply(models.Model):
    """The static reply users see when the model fails; staff edit it in the admin."""

    language = models.CharField(max_length=8, unique=True, help_text="en, zh, ...")
    text = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "fallback replies"

    def __str__(self) -> str:
        return f"{self.language}: {self.text[:40]}"


class ConversationTransition(models.Model):
    """One move of a conversation's state machine, as it happened."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=32, choices=ConversationState.choices)
    to_state = models.CharField(max_length=32, choices=ConversationState.choices)
    reason = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["conversation", "at", "pk"]
        indexes = [models.Index(fields=["conversation", "at"])]

    def __str__(self) -> str:
        return f"{self.from_state} -> {self.to_state}"


class AssistantProfile(models.Model):
    """What staff tell the model about itself: the system prompt (one row; edited in the admin)."""

    system_prompt = models.TextField(
        help_text="Sent first in every prompt. Empty: the LLM_SYSTEM_PROMPT setting is used."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "assistant profile"

    def __str__(self) -> str:
        return "Assistant profile"


class SlotValue(models.Model):
    """A slot's current value in a conversation; encrypted at rest, searchable by blind index."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="slots")
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)  # nlu.SlotDefinition types: phone, email, address, ...
    value = EncryptedTextField()
    # HMAC of the normalised value (pii.blind_index) for personal kinds: find a conversation by a
    # phone number typed in any format without storing or scanning plaintext.
    blind_index = models.CharField(max_length=64, blank=True, db_index=True)
    masked = models.CharField(max_length=200)  # what staff and logs may see: 139****5678
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["conversation", "name"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "name"], name="slot_value_unique")
        ]
        permissions = [("reveal_slotvalue", "Can reveal decrypted personal data in slot values")]

    def __str__(self) -> str:
        return f"{self.name}={self.masked}"


class SlotChange(models.Model):
    """A slot filled or corrected: part of the conversation's history, masked values only."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="slot_changes"
    )
    name = models.CharField(max_length=64)
    old_masked = models.CharField(max_length=200, blank=True)
    new_masked = models.CharField(max_length=200)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.name}: {self.old_masked} -> {self.new_masked}"


class PersonalDataReveal(models.Model):
    """Audit record: a staff member saw a decrypted personal value (who, when, which field)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: the record must outlive the staff account and the conversation.
    username = models.CharField(max_length=150)
    conversation_public_id = models.UUIDField()
    slot_name = models.CharField(max_length=64)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.username} revealed {self.slot_name} of {self.conversation_public_id}"


class PickupCode(models.Model):
    """A one-time code that lets another device open a conversation (stored hashed)."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="pickup_codes"
    )
    # SHA-256 of the code: a database reader cannot use a code that is still valid.
    code_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pickup code for {self.conversation_id}"


class ConversationGrant(models.Model):
    """Another anonymous browser session that may open the conversation (a redeemed code)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="grants")
    session_key = models.CharField(max_length=40, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "session_key"], name="grant_unique_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_key[:6]}… may open {self.conversation_id}"


class EndUserDataAction(models.TextChoices):
    EXPORT = "export", "Export"
    ERASE = "erase", "Erase"


class EndUserDataRequest(models.Model):
    """Audit record: one end user's data was exported or erased (who asked, what it touched)."""

    action = models.CharField(max_length=16, choices=EndUserDataAction.choices)
    # The tenant whose conversations were searched, and the integrator's id of the person.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_username = models.CharField(max_length=150)
    end_user = models.CharField(max_length=200)
    # Who asked: an API key (name and prefix) or a staff username. Text, to outlive both.
    requested_by = models.CharField(max_length=200)
    conversations = models.PositiveIntegerField(default=0)
    messages = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.action} of {self.end_user} by {self.requested_by}"
