"""The dialogue policy: what the bot does next in a task (ordering a meal, checking an order).

The policy decides; the model only writes words. A turn's decision says which slots to write,
which question the reply must ask, and whether the reply is finished text (a template) or left to
the LLM with an instruction. When the LLM writes and its text wanders off ("Goodbye!" while the
phone number is still missing), the turn appends the question the policy asked for, and the
conversation waits for that slot whatever the text said (conversations/turns.py).

Pure functions over a snapshot: no database, no network. The state lives in Conversation.intent
and Conversation.context:

    {"language": "zh", "filled": ["meal", "quantity"], "awaiting": "phone"}  # asking for a slot
    {"language": "zh", "filled": [...], "confirming": true}                  # asked to confirm
    {"language": "zh", "done": true}                                        # task ended
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conversations import pii
from nlu import entities
from nlu.models import Intent, ReplyMode, SlotDefinition, SlotType
from nlu.recognize import OUT_OF_SCOPE
from nlu.services import render_template
from nlu.templates import template_fill

# Passed as `guess` before the classifier has run: decide() returns None if it needs one.
NOT_CLASSIFIED = object()


@dataclass(frozen=True)
class DialogueState:
    """The conversation's dialogue state at the start of a turn (slot values decrypted)."""

    intent: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    filled: Mapping[str, str] = field(default_factory=dict)

    @property
    def task_open(self) -> bool:
        return bool(self.intent) and not self.context.get("done") and "filled" in self.context

    @property
    def awaiting(self) -> str | None:
        return self.context.get("awaiting") or None

    @property
    def confirming(self) -> bool:
        return bool(self.context.get("confirming"))


@dataclass(frozen=True)
class SlotWrite:
    """A slot value the turn stores; `raw` is the text it came from (masked in the message)."""

    name: str
    kind: str
    value: str
    personal: bool
    raw: str
    correction: bool


@dataclass(frozen=True)
class Decision:
    """What this turn does."""

    intent: str  # the conversation's intent afterwards
    context: dict[str, Any]
    reason: str  # why: slot_question, confirm, completed, cancelled, template, llm, reask, ...
    message_intent: str = ""  # the user message's intent, as recognised
    writes: tuple[SlotWrite, ...] = ()
    reply_text: str | None = None  # finished text; None: the LLM writes the reply
    instruction: str = ""  # for the LLM: what to say
    must_ask: str = ""  # the question the reply must end with
    slots_for_prompt: dict[str, str] = field(default_factory=dict)  # label -> plaintext value

    @property
    def llm_writes(self) -> bool:
        return self.reply_text is None


def language_of(text: str, default: str = "en") -> str:
    """zh when the text has a CJK character, en when it has Latin letters, else `default`."""
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return "zh"
    if any(ch.isascii() and ch.isalpha() for ch in text):
        return "en"
    return default


def decide(
    state: DialogueState,
    intents: Mapping[str, Intent],
    text: str,
    guess: object = NOT_CLASSIFIED,
) -> Decision | None:
    """The next step for a user message; None when the message's intent must be classified first.

    `intents` are the active intents by name, slots prefetched. `guess` is the classifier's
    intent name (or None when no intent fits).
    """
    language = language_of(text, state.context.get("language", "en"))
    active = intents.get(state.intent) if state.task_open else None
    if active is not None:
        if entities.is_cancel(text):
            return Decision(
                intent=active.name,
                context={"language": language, "done": True},
                reason="cancelled",
                message_intent=active.name,
                reply_text=_CANCELLED[language],
            )
        found = entities.extract(
            text,
            [entities.SlotSpec.from_definition(s) for s in active.slots.all()],
            awaiting=state.awaiting,
        )
        answered = state.confirming and entities.yes_no(text) is not None
        if found or answered:
            return _continue(state, active, found, text, language)
        if guess is NOT_CLASSIFIED:
            return None
        if isinstance(guess, str) and guess in intents and guess not in (active.name, OUT_OF_SCOPE):
            # Another request: that task starts (this one is dropped). Out of scope is not one:
            # the open question is asked again.
            return _start(intents[guess], text, language)
        # Neither an answer nor another request: ask again.
        return _next_step(active, dict(state.filled), language, writes=(), reask=True)
    if not intents:
        return _free(language)
    if guess is NOT_CLASSIFIED:
        return None
    if isinstance(guess, str) and guess in intents:
        return _start(intents[guess], text, language)
    return _free(language)


# --- steps --------------------------------------------------------------------------------------


def _start(intent: Intent, text: str, language: str) -> Decision:
    slots = list(intent.slots.all())
    if not slots:
        context = {"language": language, "done": True}
        if intent.reply_mode == ReplyMode.TEMPLATE:
            return Decision(
                intent=intent.name,
                context=context,
                reason="template",
                message_intent=intent.name,
                reply_text=render_template(intent, {}, language=language),
            )
        return Decision(
            intent=intent.name,
            context=context,
            reason="llm",
            message_intent=intent.name,
            instruction=_guidance(intent, language),
        )
    fresh = DialogueState(intent=intent.name, context={"language": language, "filled": []})
    found = entities.extract(text, [entities.SlotSpec.from_definition(s) for s in slots])
    return _continue(fresh, intent, found, text, language)


def _continue(
    state: DialogueState,
    intent: Intent,
    found: Mapping[str, entities.Entity],
    text: str,
    language: str,
) -> Decision:
    slots = {s.name: s for s in intent.slots.all()}
    filled = dict(state.filled)
    writes: list[SlotWrite] = []
    for name, entity in found.items():
        slot = slots[name]
        if filled.get(name) == entity.value:
            continue
        writes.append(
            SlotWrite(
                name=name,
                kind=slot.slot_type,
                value=entity.value,
                personal=slot.is_personal_data,
                raw=entity.raw,
                correction=name in filled,
            )
        )
        filled[name] = entity.value
    if state.confirming and not writes:
        answer = entities.yes_no(text)
        if answer is True:
            return _complete(intent, filled, language)
        if answer is False:
            question = _WHAT_TO_CHANGE[language]
            return _decision(
                intent,
                filled,
                language,
                reason="confirm_denied",
                question=question,
                context_extra={"confirming": True},
                writes=(),
            )
    return _next_step(intent, filled, language, writes=tuple(writes))


def _next_step(
    intent: Intent,
    filled: dict[str, str],
    language: str,
    *,
    writes: tuple[SlotWrite, ...],
    reask: bool = False,
) -> Decision:
    acks = " ".join(_ack(intent, w, language) for w in writes if w.correction)
    missing = [s for s in intent.slots.all() if s.required and not filled.get(s.name)]
    if missing:
        slot = missing[0]
        question = slot.prompt(language)
        if reask:
            question = f"{_SORRY[language]}{question}"
        return _decision(
            intent,
            filled,
            language,
            reason="reask" if reask else "slot_question",
            question=question,
            lead=acks,
            context_extra={"awaiting": slot.name},
            writes=writes,
        )
    return _decision(
        intent,
        filled,
        language,
        reason="confirm",
        question=_confirmation(intent, filled, language),
        lead=acks,
        context_extra={"confirming": True},
        writes=writes,
    )


def _decision(
    intent: Intent,
    filled: dict[str, str],
    language: str,
    *,
    reason: str,
    question: str,
    context_extra: dict[str, Any],
    writes: tuple[SlotWrite, ...],
    lead: str = "",
) -> Decision:
    context = {"language": language, "filled": sorted(filled), **context_extra}
    text = f"{lead} {question}".strip() if language == "en" else f"{lead}{question}"
    common = {
        "intent": intent.name,
        "context": context,
        "reason": reason,
        "message_intent": intent.name,
        "writes": writes,
    }
    if intent.reply_mode == ReplyMode.TEMPLATE:
        return Decision(**common, reply_text=text)
    return Decision(
        **common,
        instruction=_task_instruction(intent, language, lead, question),
        must_ask=question,
        slots_for_prompt=_prompt_slots(intent, filled, language),
    )


def _complete(intent: Intent, filled: dict[str, str], language: str) -> Decision:
    context = {"language": language, "done": True}
    if intent.reply_mode == ReplyMode.TEMPLATE:
        text = render_template(intent, _display_values(intent, filled, language), language=language)
        return Decision(
            intent=intent.name,
            context=context,
            reason="completed",
            message_intent=intent.name,
            reply_text=text,
        )
    return Decision(
        intent=intent.name,
        context=context,
        reason="completed",
        message_intent=intent.name,
        instruction=_guidance(intent, language),
        slots_for_prompt=_prompt_slots(intent, filled, language),
    )


def _free(language: str) -> Decision:
    """No task: the model answers freely."""
    return Decision(intent="", context={"language": language}, reason="llm")


# --- words --------------------------------------------------------------------------------------

_CANCELLED = {
    "zh": "好的，已取消。还有什么可以帮您？",
    "en": "OK, I've cancelled that. Anything else I can help with?",
}
_WHAT_TO_CHANGE = {"zh": "好的，请问需要修改哪一项？", "en": "Sure, what would you like to change?"}
_SORRY = {"zh": "抱歉，我没有听明白。", "en": "Sorry, I didn't catch that. "}


def display_value(slot: SlotDefinition, value: str, language: str) -> str:
    """How a reply shows a value: personal data masked (replies are stored), choices by label.

    Escaped for Markdown, which replies are written in: a mask's asterisks are not emphasis.
    """
    if slot.is_personal_data:
        kind = slot.slot_type if slot.slot_type in pii.KINDS else "text"
        shown = pii.mask(value, kind)
    elif slot.slot_type == SlotType.CHOICE:
        shown = slot.choice_label(value, language)
    else:
        shown = value
    return pii.markdown_escape(shown)


def _display_values(intent: Intent, filled: Mapping[str, str], language: str) -> dict[str, str]:
    slots = {s.name: s for s in intent.slots.all()}
    return {
        name: display_value(slots[name], value, language)
        for name, value in filled.items()
        if name in slots
    }


def _ack(intent: Intent, write: SlotWrite, language: str) -> str:
    slot = next(s for s in intent.slots.all() if s.name == write.name)
    shown = display_value(slot, write.value, language)
    if language == "zh":
        return f"好的，{slot.label('zh')}已改为{shown}。"
    return f"OK, I've changed the {slot.label('en')} to {shown}."


def _confirmation(intent: Intent, filled: Mapping[str, str], language: str) -> str:
    shown = _display_values(intent, filled, language)
    template = intent.confirm_template(language)
    if template.strip():
        return template_fill(template, lambda name: shown.get(name, ""))
    slots = [s for s in intent.slots.all() if s.name in shown]
    if language == "zh":
        listed = "，".join(f"{s.label('zh')}：{shown[s.name]}" for s in slots)
        return f"请确认：{listed}。对吗？"
    listed = ", ".join(f"{s.label('en')}: {shown[s.name]}" for s in slots)
    return f"Please confirm: {listed}. Is that right?"


def _prompt_slots(intent: Intent, filled: Mapping[str, str], language: str) -> dict[str, str]:
    """Slot values for the model, by label: plaintext, in memory only (never stored or logged)."""
    slots = {s.name: s for s in intent.slots.all()}
    return {
        slots[name].label(language): (
            slots[name].choice_label(value, language)
            if slots[name].slot_type == SlotType.CHOICE
            else value
        )
        for name, value in filled.items()
        if name in slots
    }


def _guidance(intent: Intent, language: str) -> str:
    # Imperative and about the last message only: a small model otherwise tends to carry on
    # with whatever the conversation was doing before (it repeated an order's confirmation).
    template = intent.response_template(language).strip()
    text = f"The user's last message is a case of: {intent.display_name or intent.name}."
    if intent.description:
        text += f" ({intent.description})"
    if template:
        text += f" Answer that last message only, briefly, like this: {template}"
    return text


def _task_instruction(intent: Intent, language: str, lead: str, question: str) -> str:
    text = f"You are helping the user with: {intent.display_name or intent.name}."
    if lead:
        text += f" Tell them: {lead}"
    return text + f" Then ask exactly this question and nothing else: {question}"
