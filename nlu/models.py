"""Intents and the slots each one needs; staff define both in the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from nlu.templates import template_placeholders

# Intent and slot names end up in templates ({meal}), classifier labels and Conversation.intent,
# so they are plain snake_case identifiers.
identifier_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*\Z",
    "Use lowercase letters, digits and underscores, starting with a letter (e.g. order_meal).",
)

LANGUAGES: tuple[str, ...] = ("en", "zh")


class ReplyMode(models.TextChoices):
    TEMPLATE = "template", "Template"
    LLM = "llm", "Language model"


class Intent(models.Model):
    """Something a user wants to do, e.g. order_meal; its reply and its slots."""

    name = models.CharField(
        max_length=100,  # Conversation.intent and Message.intent hold this name
        unique=True,
        validators=[identifier_validator],
    )
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(
        blank=True, help_text="What users mean by it; also guides the model's classification."
    )
    reply_mode = models.CharField(
        max_length=16,
        choices=ReplyMode.choices,
        default=ReplyMode.TEMPLATE,
        help_text="Template: the reply is the template filled in. Language model: it writes the "
        "reply, with the template as guidance.",
    )
    response_template_en = models.TextField(
        "response template (English)",
        blank=True,
        help_text="{slot} is replaced by the slot's value; write {{ and }} for literal braces.",
    )
    response_template_zh = models.TextField(
        "response template (Chinese)",
        blank=True,
        help_text="{slot} is replaced by the slot's value; write {{ and }} for literal braces.",
    )
    confirm_template_en = models.TextField(
        "confirmation question (English)",
        blank=True,
        help_text="Asked once every required slot is filled, before the intent completes, e.g. "
        '"{quantity} × {meal} to {address}, is that right?". Empty: a list of the slots.',
    )
    confirm_template_zh = models.TextField(
        "confirmation question (Chinese)",
        blank=True,
        help_text="同上，例如“{meal} × {quantity}，送到{address}，对吗？”。留空则列出各项。",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name

    def response_template(self, language: str) -> str:
        """The template for "en" or "zh"."""
        return self.response_template_zh if language == "zh" else self.response_template_en

    def confirm_template(self, language: str) -> str:
        """The confirmation question for "en" or "zh" ("" when staff left it empty)."""
        return self.confirm_template_zh if language == "zh" else self.confirm_template_en

    def clean(self) -> None:
        # Placeholder *names* are checked against the slots by the admin's slot formset and by
        # services.domain_load: the slots may be edited in the same request as the template.
        errors: dict[str, str] = {}
        for language in LANGUAGES:
            field = f"response_template_{language}"
            text = getattr(self, field)
            try:
                template_placeholders(text)
            except ValueError as exc:
                errors[field] = str(exc)
            else:
                if self.reply_mode == ReplyMode.TEMPLATE and not text.strip():
                    errors[field] = "A template reply needs a template in every language."
            field = f"confirm_template_{language}"
            try:
                template_placeholders(getattr(self, field))
            except ValueError as exc:
                errors[field] = str(exc)
        if errors:
            raise ValidationError(errors)


class IntentExample(models.Model):
    """A sentence a user might say for an intent; the classifier and LLM prompt learn from it."""

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="examples")
    text = models.CharField(max_length=500)
    # Annotated values in the text: [{"start", "end", "entity", "value"}], offsets in characters
    # (end exclusive); value differs from text[start:end] for a synonym. Kept from imports.
    entities = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["intent_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "text"], name="example_unique_per_intent")
        ]

    def __str__(self) -> str:
        return self.text


class SlotType(models.TextChoices):
    PHONE = "phone", "Phone number"
    EMAIL = "email", "E-mail address"
    ADDRESS = "address", "Postal address"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    TEXT = "text", "Free text"
    CHOICE = "choice", "One of a list"


# Values of these types identify a person: they must be stored encrypted (conversations/pii.py).
PERSONAL_SLOT_TYPES = frozenset({SlotType.PHONE, SlotType.EMAIL, SlotType.ADDRESS})


class SlotDefinition(models.Model):
    """One piece of information an intent needs, and the question that asks for it."""

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="slots")
    name = models.CharField(max_length=64, validators=[identifier_validator])
    label_en = models.CharField(
        "label (English)", max_length=100, blank=True, help_text="e.g. phone number"
    )
    label_zh = models.CharField(
        "label (Chinese)", max_length=100, blank=True, help_text="如：手机号"
    )
    slot_type = models.CharField(max_length=16, choices=SlotType.choices, default=SlotType.TEXT)
    choices = models.JSONField(
        default=list,
        blank=True,
        help_text='Choice slots only: [{"value": "classic", "en": "Classic set", '
        '"zh": "经典套餐"}, ...]. The value is stored; the label is shown.',
    )
    required = models.BooleanField(default=True)
    # On by default: an unticked box that should have been ticked leaks data, the reverse does not.
    is_personal_data = models.BooleanField(
        "personal data",
        default=True,
        help_text="Stored encrypted and masked in logs. Always on for phone, e-mail and address.",
    )
    prompt_en = models.CharField("question (English)", max_length=500, blank=True)
    prompt_zh = models.CharField("question (Chinese)", max_length=500, blank=True)
    order = models.PositiveSmallIntegerField(
        default=0, help_text="Missing slots are asked in this order."
    )

    class Meta:
        # intent_id, not intent: ordering by the relation would join Intent for its own ordering.
        ordering = ["intent_id", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "name"], name="slot_name_unique_per_intent")
        ]

    def __str__(self) -> str:
        return f"{self.intent_id}:{self.name}"

    def prompt(self, language: str) -> str:
        """The question for "en" or "zh"."""
        return self.prompt_zh if language == "zh" else self.prompt_en

    def label(self, language: str) -> str:
        """How replies name the slot ("the phone number was changed"); the name if unset."""
        return (self.label_zh if language == "zh" else self.label_en) or self.name.replace("_", " ")

    def choice_label(self, value: str, language: str) -> str:
        """The label of a choice value in a language; the value itself if it is not a choice."""
        for choice in self.choices or []:
            if isinstance(choice, dict) and choice.get("value") == value:
                return str(choice.get(language) or value)
        return value

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.slot_type == SlotType.CHOICE:
            problem = _choices_problem(self.choices)
            if problem:
                errors["choices"] = problem
        elif self.choices:
            errors["choices"] = "Only choice slots have choices; empty the list or change the type."
        if self.slot_type in PERSONAL_SLOT_TYPES and not self.is_personal_data:
            errors["is_personal_data"] = (
                f"A {self.get_slot_type_display().lower()} is personal data: it must be stored "
                "encrypted, so this box must stay ticked."
            )
        if self.required:
            for language in LANGUAGES:
                if not getattr(self, f"prompt_{language}").strip():
                    errors[f"prompt_{language}"] = (
                        "A required slot needs the question that asks for it."
                    )
        if errors:
            raise ValidationError(errors)


def _choices_problem(choices: Any) -> str:
    """Why a choice slot's list is unusable, or "" when it is fine."""
    example = '[{"value": "classic", "en": "Classic set", "zh": "经典套餐"}]'
    if not isinstance(choices, list) or not choices:
        return f"A choice slot needs a non-empty list of choices, e.g. {example}."
    seen: set[str] = set()
    for i, choice in enumerate(choices, start=1):
        if not isinstance(choice, dict) or set(choice) != {"value", *LANGUAGES}:
            return f"Choice {i} must have exactly the keys value, en and zh, e.g. {example}."
        if not all(isinstance(v, str) and v.strip() for v in choice.values()):
            return f"Choice {i}: value, en and zh must be non-empty text."
        value = choice["value"]
        try:
            identifier_validator(value)
        except ValidationError:
            return f"Choice {i}: the value {value!r} must be lowercase snake_case (e.g. classic)."
        if value in seen:
            return f"Choice {i}: the value {value!r} appears twice."
        seen.add(value)
    return ""


class NluModelStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class NluModel(models.Model):
    """One trained intent classifier: the ONNX artifact, its evaluation, whether it serves.

    The artifact lives in the database, so every web process and worker, on any host, loads the
    same bytes (a local copy is kept under VAR_DIR). At most one model serves at a time; a new
    model never serves until staff promote it.
    """

    status = models.CharField(
        max_length=16, choices=NluModelStatus.choices, default=NluModelStatus.TRAINING
    )
    is_serving = models.BooleanField(default=False)
    # What the classifier is: its features and estimator ("tfidf-char+word/logreg", ...).
    recipe = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(default=list, blank=True)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    # Cross-validated evaluation: accuracy, macro_f1, per-intent precision/recall, confusion.
    metrics = models.JSONField(default=dict, blank=True)
    confusion_png = models.BinaryField(null=True, blank=True, editable=False)
    example_count = models.PositiveIntegerField(default=0)
    intent_count = models.PositiveIntegerField(default=0)
    training_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name = "NLU model"
        constraints = [
            models.UniqueConstraint(
                fields=["is_serving"], condition=Q(is_serving=True), name="one_serving_nlu_model"
            )
        ]

    def __str__(self) -> str:
        return f"NLU model v{self.pk}" + (" (serving)" if self.is_serving else "")


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    CORRECTED = "corrected", "Corrected"
    DISMISSED = "dismissed", "Dismissed"


class ReviewItem(models.Model):
    """A real utterance the classifier was unsure about, with the LLM's label as a suggestion.

    Staff accept the suggestion into the training data, correct it, or dismiss it. The text is
    stored as the conversation stored it (personal data masked).
    """

    text = models.CharField(max_length=500)
    # The normalised text: one open item per sentence, however often users send it.
    normalized = models.CharField(max_length=500, db_index=True)
    model_intent = models.CharField(max_length=100, blank=True)
    model_confidence = models.FloatField(null=True, blank=True)
    top = models.JSONField(default=list, blank=True)  # [[intent, confidence], ...] of the model
    suggested_intent = models.CharField(max_length=100, blank=True)  # the LLM's label
    nlu_model = models.ForeignKey(
        NluModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seen_count = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN
    )
    resolved_intent = models.ForeignKey(
        Intent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seen_count", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["normalized"],
                condition=Q(status="open"),
                name="one_open_review_item_per_text",
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]


class SensitiveWordCategory(models.TextChoices):
    ABUSE = "abuse", "Abuse"
    POLITICS = "politics", "Politics"
    ADS = "ads", "Advertising"
    PERSONAL_DATA = "personal_data", "Personal data"
    OTHER = "other", "Other"


class SensitiveWordAction(models.TextChoices):
    # The same values as nlu.moderation.matcher.Action (a test keeps them in step).
    BLOCK = "block", "Block the message"
    MASK = "mask", "Mask the word"
    FLAG = "flag", "Flag for review"


class SensitiveWord(models.Model):
    """A word or phrase that moderation blocks, masks or flags; staff edit the list in the admin.

    Every process matches against the active words; an edit reaches them within seconds
    (nlu/moderation/registry.py). Write through nlu.moderation.services, never directly.
    """

    word = models.CharField(
        max_length=64, help_text="As staff spell it; matching ignores case, width and accents."
    )
    # normalize_word(word): what the matcher compares. The unique constraint's index (normalised
    # first) serves lookups by it, so it has no index of its own.
    normalised = models.CharField(max_length=255, editable=False)
    category = models.CharField(
        max_length=16, choices=SensitiveWordCategory.choices, default=SensitiveWordCategory.OTHER
    )
    action = models.CharField(
        max_length=8, choices=SensitiveWordAction.choices, default=SensitiveWordAction.MASK
    )
    language = models.CharField(
        max_length=16, blank=True, help_text='A short code such as "en" or "zh"; empty: any.'
    )
    is_active = models.BooleanField("active", default=True)
    # Where the word came from: "staff", "import" or a seed list ("ldnoobw-en", ...): the
    # attribution the seed lists' licences ask for, and what a clean-up filters on.
    source = models.CharField(max_length=50, default="staff")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["normalised", "category"]
        constraints = [
            # What makes imports and seeding idempotent: one row per word and category.
            models.UniqueConstraint(
                fields=["normalised", "category"], name="sensitive_word_unique_per_category"
            )
        ]

    def __str__(self) -> str:
        return self.word
