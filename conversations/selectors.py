"""Reads of the chat domain, always scoped to who is asking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from conversations import pii
from conversations.models import (
    AssistantProfile,
    Conversation,
    ConversationGrant,
    FallbackReply,
    Message,
    MessageRole,
    MessageStatus,
    SlotValue,
)

DEFAULT_FALLBACKS = {
    "zh": "服务开小差，请稍后再试",
    "en": "Something went wrong, please try again",
}


@dataclass(frozen=True)
class Actor:
    """Who owns conversations: a signed-in user, or else an anonymous browser session."""

    user_id: int | None
    session_key: str

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None


def conversation_list_for_actor(actor: Actor) -> QuerySet[Conversation]:
    """The actor's conversations and those granted to its session, most recently active first."""
    if actor.user_id is not None:
        visible = Q(user_id=actor.user_id)
    elif actor.session_key:
        visible = Q(user__isnull=True, session_key=actor.session_key)
    else:
        return Conversation.objects.none()
    if actor.session_key:
        # A subquery, not a join through grants: one query, and no duplicate rows to .distinct().
        granted = ConversationGrant.objects.filter(session_key=actor.session_key)
        visible |= Q(pk__in=granted.values("conversation_id"))
    return Conversation.objects.filter(visible)


def actor_owns(conversation: Conversation, actor: Actor) -> bool:
    """Whether the actor owns the conversation (a grant lets a session open it, not own it)."""
    if conversation.user_id is not None:
        return conversation.user_id == actor.user_id
    return (
        actor.user_id is None
        and bool(actor.session_key)
        and (conversation.session_key == actor.session_key)
    )


def conversation_get_for_actor(public_id: uuid.UUID | str, actor: Actor) -> Conversation | None:
    """The conversation if it exists and belongs to the actor, else None (no existence leak)."""
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return conversation_list_for_actor(actor).filter(public_id=key).first()


@dataclass(frozen=True)
class ConversationStateData:
    """What the state API shows: the conversation, its masked slots, its latest messages."""

    conversation: Conversation
    slots: list[SlotValue]
    messages: list[Message]


def conversation_state_for_actor(
    public_id: uuid.UUID | str, actor: Actor, *, message_limit: int
) -> ConversationStateData | None:
    """The conversation's state for the actor, or None (three queries, whatever the size)."""
    conversation = conversation_get_for_actor(public_id, actor)
    if conversation is None:
        return None
    # Only the masked form is loaded: the encrypted value is never read, so never decrypted.
    slots = list(conversation.slots.only("conversation", "name", "kind", "masked").order_by("name"))
    latest = conversation.messages.order_by("-sequence")[:message_limit]
    messages = sorted(latest, key=lambda m: m.sequence)
    return ConversationStateData(conversation=conversation, slots=slots, messages=messages)


def message_list(conversation: Conversation) -> list[Message]:
    """The conversation's messages in order, with each reply's user message id at hand."""
    return list(conversation.messages.select_related("reply_to").order_by("sequence"))


def is_stale(message: Message) -> bool:
    """A reply still streaming long after it started belongs to a process that died."""
    limit = timedelta(seconds=settings.CHAT_STALE_TURN_SECONDS)
    return message.status == MessageStatus.STREAMING and message.updated_at < timezone.now() - limit


def reply_snapshot(conversation: Conversation, message_public_id: str) -> dict[str, object] | None:
    """A reply's stored state as a `message.snapshot` frame, or None if it is not here."""
    try:
        key = uuid.UUID(str(message_public_id))
    except ValueError:
        return None
    message = conversation.messages.filter(public_id=key, role=MessageRole.ASSISTANT).first()
    if message is None:
        return None
    status = MessageStatus.INTERRUPTED if is_stale(message) else message.status
    return {
        "type": "message.snapshot",
        "message_id": str(message.public_id),
        "text": message.text,
        "status": status,
        "last_seq": message.token_count,
        "is_fallback": message.is_fallback,
        "error_code": message.error_code,
    }


def fallback_text(user_text: str) -> str:
    """The staff-edited fallback reply in the user's language (Chinese if any CJK character)."""
    language = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in user_text) else "en"
    stored = FallbackReply.objects.filter(language=language).values_list("text", flat=True).first()
    return stored or DEFAULT_FALLBACKS[language]


SYSTEM_PROMPT_CACHE_KEY = "conversations:system-prompt"


def system_prompt() -> str:
    """The staff-edited system prompt (cached; services.assistant_profile_save refreshes it)."""
    prompt = cache.get(SYSTEM_PROMPT_CACHE_KEY)
    if prompt is None:
        stored = AssistantProfile.objects.values_list("system_prompt", flat=True).first()
        prompt = stored or settings.LLM_SYSTEM_PROMPT
        cache.set(SYSTEM_PROMPT_CACHE_KEY, prompt, 300)
    return prompt


def conversation_find_by_slot(value: str, kind: str) -> QuerySet[Conversation]:
    """Conversations holding a personal slot equal to `value` in any spelling (blind index)."""
    return Conversation.objects.filter(slots__blind_index=pii.blind_index(value, kind)).distinct()
