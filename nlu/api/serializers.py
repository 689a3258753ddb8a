"""Input and output shapes of the NLU API (strict field types: nlu/api/fields.py)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from nlu.api.fields import (
    NO_NUL,
    ONE_LINE,
    QueryBooleanField,
    QueryChoiceField,
    SchemaPattern,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    UserTextField,
)
from nlu.exchange.rows import entities_clean
from nlu.exchange.services import ImportReport
from nlu.models import (
    NluModel,
    NluModelStatus,
    ReplyMode,
    SensitiveWordAction,
    SensitiveWordCategory,
    SlotType,
)
from nlu.moderation.services import MAX_NOTE, MAX_WORD
from nlu.parse import ParseResult

# Intent and slot names (nlu.models.identifier_validator); also the URL's {name}.
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
NAME_MAX = 100
SLOT_NAME_MAX = 64
EXAMPLES_MAX = 500
_LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
_name = RegexValidator(
    NAME_PATTERN, "Use lowercase letters, digits and underscores, starting with a letter."
)


# --- parse ------------------------------------------------------------------------------------


class ParseInputSerializer(serializers.Serializer):
    text = UserTextField(trim_whitespace=False)
    language = StrictCharField(
        required=False,
        max_length=16,
        validators=[RegexValidator(_LANGUAGE_PATTERN, "A language code such as en or zh-hans.")],
        help_text="The text's language if known (en, zh, zh-hans). Optional: the classifier "
        "and the entity rules read English and Chinese alike.",
    )


class ScoredIntentSerializer(serializers.Serializer):
    name = serializers.CharField()
    confidence = serializers.FloatField(help_text="The classifier's probability, 0 to 1")


class ParsedIntentSerializer(serializers.Serializer):
    name = serializers.CharField()
    confidence = serializers.FloatField(
        allow_null=True,
        help_text="The classifier's probability for this intent; null when only the LLM named it",
    )


class ParsedEntitySerializer(serializers.Serializer):
    entity = serializers.CharField(help_text="The slot of the intent this value fills")
    value = serializers.CharField(help_text="Normalised: 13912345678, 2, classic, 2026-11-23")
    start = serializers.IntegerField(help_text="Offset in the text, in characters")
    end = serializers.IntegerField(help_text="End offset (exclusive): text[start:end]")


class ParseOutputSerializer(serializers.Serializer):
    text = serializers.CharField()
    intent = ParsedIntentSerializer(allow_null=True, help_text="null: no intent fits")
    ranking = ScoredIntentSerializer(many=True, help_text="The classifier's top intents")
    entities = ParsedEntitySerializer(many=True)
    source = serializers.ChoiceField(
        choices=["model", "cache", "llm", "none"],
        help_text="model: the classifier was sure; cache: the same text was classified "
        "moments ago; llm: the few-shot LLM decided (the classifier was under the confidence "
        "threshold or no classifier serves); none: neither found an intent",
    )
    model_version = serializers.IntegerField(
        allow_null=True, help_text="The classifier (NLU model id) that ranked the text"
    )

    @staticmethod
    def from_result(result: ParseResult) -> dict[str, Any]:
        """The response body of a parse."""
        confidence = None if result.confidence is None else _rounded(result.confidence)
        intent = (
            {"name": result.intent, "confidence": confidence} if result.intent is not None else None
        )
        data = {
            "text": result.text,
            "intent": intent,
            "ranking": [{"name": n, "confidence": _rounded(c)} for n, c in result.ranking],
            "entities": [vars(e) for e in result.entities],
            "source": result.source,
            "model_version": result.model_version,
        }
        return dict(ParseOutputSerializer(data).data)


def _rounded(confidence: float) -> float:
    # Six places, as the prediction cache keeps them: a repeat from the cache reads the same.
    return round(float(confidence), 6)


# --- intents ----------------------------------------------------------------------------------


class SlotChoiceSerializer(serializers.Serializer):
    value = StrictCharField(max_length=NAME_MAX, validators=[_name])
    en = StrictCharField(max_length=200)
    zh = StrictCharField(max_length=200)


class SlotSerializer(serializers.Serializer):
    """A slot as written and as read (on input, omitted fields take their defaults)."""

    name = StrictCharField(max_length=SLOT_NAME_MAX, validators=[_name])
    label_en = StrictCharField(max_length=100, allow_blank=True, required=False)
    label_zh = StrictCharField(max_length=100, allow_blank=True, required=False)
    slot_type = serializers.ChoiceField(choices=SlotType.choices, required=False)
    choices = SlotChoiceSerializer(
        many=True, required=False, help_text="Choice slots only: the stable value and labels"
    )
    required = StrictBooleanField(required=False)
    is_personal_data = StrictBooleanField(
        required=False, help_text="Always true for phone, email and address slots"
    )
    prompt_en = StrictCharField(
        max_length=500, allow_blank=True, required=False, help_text="Needed if required"
    )
    prompt_zh = StrictCharField(
        max_length=500, allow_blank=True, required=False, help_text="Needed if required"
    )
    order = StrictIntegerField(
        min_value=0,
        max_value=32767,
        required=False,
        help_text="Asking order; default: the position in the list",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        values = super().to_internal_value(data)
        if "choices" in values:  # plain dicts in the JSON column
            values["choices"] = [dict(choice) for choice in values["choices"]]
        return dict(values)


_TEMPLATE_HELP = "{slot} placeholders name slots of this intent; {{ and }} are literal braces"


class IntentInputSerializer(serializers.Serializer):
    """An intent to create; PATCH takes any of its fields (`slots`: the whole new list)."""

    name = StrictCharField(max_length=NAME_MAX, validators=[_name])
    display_name = StrictCharField(max_length=200, allow_blank=True, required=False)
    description = StrictCharField(
        allow_blank=True, required=False, help_text="What users mean by it; guides the LLM"
    )
    reply_mode = serializers.ChoiceField(choices=ReplyMode.choices, required=False)
    response_template_en = StrictCharField(
        allow_blank=True, required=False, help_text=_TEMPLATE_HELP
    )
    response_template_zh = StrictCharField(
        allow_blank=True, required=False, help_text=_TEMPLATE_HELP
    )
    confirm_template_en = StrictCharField(
        allow_blank=True, required=False, help_text=_TEMPLATE_HELP
    )
    confirm_template_zh = StrictCharField(
        allow_blank=True, required=False, help_text=_TEMPLATE_HELP
    )
    active = StrictBooleanField(required=False)
    slots = SlotSerializer(
        many=True,
        required=False,
        help_text="Asked in this order. On PATCH, the whole new list: slots not listed are deleted",
    )


class IntentOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    description = serializers.CharField()
    reply_mode = serializers.ChoiceField(choices=ReplyMode.choices)
    response_template_en = serializers.CharField()
    response_template_zh = serializers.CharField()
    confirm_template_en = serializers.CharField()
    confirm_template_zh = serializers.CharField()
    active = serializers.BooleanField()
    slots = SlotSerializer(many=True, help_text="In asking order")
    example_count = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_example_count(self, intent: Any) -> int:
        # Annotated by selectors.intent_list; counted for a single intent.
        count = getattr(intent, "example_count", None)
        return int(count) if count is not None else intent.examples.count()


# --- examples ---------------------------------------------------------------------------------


class ExampleEntitySerializer(serializers.Serializer):
    start = StrictIntegerField(min_value=0, help_text="Offset in the text, in characters")
    end = StrictIntegerField(min_value=1, help_text="End offset (exclusive)")
    entity = StrictCharField(max_length=100)
    value = StrictCharField(
        required=False, max_length=500, help_text="Default: text[start:end]; else a synonym"
    )


class ExampleInputSerializer(serializers.Serializer):
    text = StrictCharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text="One line, at most 500 characters; a text that is empty, longer, spans "
        "several lines or holds control characters is reported as invalid",
    )
    entities = ExampleEntitySerializer(many=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # As the importer treats a JSONL line: entities that do not fit the text are left out
        # (and said so), the example is still added.
        raw = [dict(entity) for entity in attrs.get("entities", [])]
        entities = entities_clean(attrs["text"], raw)
        return {"text": attrs["text"], "entities": entities or [], "unfit": entities is None}


class ExamplesInputSerializer(serializers.Serializer):
    """The POST body of examples: one example, or a list of 1 to EXAMPLES_MAX.

    Not a serializer to instantiate: `validated()` checks a body, and the extension below gives
    the schema (a oneOf that drf-spectacular cannot derive with the list's bounds).
    """

    @staticmethod
    def validated(data: Any) -> list[dict[str, Any]]:
        """The examples of the body, validated.

        Each is {"text", "entities", "unfit"}: unfit when the entities sent do not fit the text
        (they are left out).

        Raises:
            ValidationError: a field is not valid, or the list is empty or too long.
        """
        if isinstance(data, list):
            many = ExampleInputSerializer(
                data=data, many=True, allow_empty=False, max_length=EXAMPLES_MAX
            )
            many.is_valid(raise_exception=True)
            return list(many.validated_data)
        one = ExampleInputSerializer(data=data)
        one.is_valid(raise_exception=True)
        return [one.validated_data]


class ExamplesInputSchema(OpenApiSerializerExtension):
    target_class = ExamplesInputSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        one = auto_schema.resolve_serializer(ExampleInputSerializer, direction).ref
        return {
            "oneOf": [
                one,
                {"type": "array", "items": one, "minItems": 1, "maxItems": EXAMPLES_MAX},
            ],
            # Applies to the object form only (JSON Schema ignores it for arrays); it also tells
            # drf-spectacular that the body is required.
            "required": ["text"],
        }


class ExampleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    entities = ExampleEntitySerializer(many=True)
    created_at = serializers.DateTimeField()


class InvalidExampleSerializer(serializers.Serializer):
    index = serializers.SerializerMethodField(help_text="Position in the list sent (from 0)")
    reason = serializers.CharField()
    text = serializers.CharField(help_text="The first 100 characters")

    def get_index(self, row: Any) -> int:
        return int(row.line) - 1  # rows are numbered from 1, like a file's lines


class ExamplesAddedOutputSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Already stored, or repeated in the list")
    invalid = InvalidExampleSerializer(many=True, help_text="Not added, and why")
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="E.g. entities left out as they do not fit"
    )

    @staticmethod
    def from_report(report: ImportReport, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The report of examples_import on `items` (ExamplesInputSerializer.validated)."""
        unfit = [
            f"Item {index}: the entities do not fit the text (0 <= start < end <= its length), "
            "so they were left out."
            for index, item in enumerate(items)
            if item["unfit"]
        ]
        data = {
            "added": report.added,
            "duplicates": report.duplicates,
            "invalid": report.invalid,
            "notes": [*unfit, *report.notes],
        }
        return dict(ExamplesAddedOutputSerializer(data).data)


# --- sensitive words --------------------------------------------------------------------------


class SensitiveWordInputSerializer(serializers.Serializer):
    """A word to add; PATCH takes any of these fields."""

    word = StrictCharField(
        max_length=MAX_WORD,
        validators=[SchemaPattern(ONE_LINE)],
        help_text="Matching ignores case, width, accents and separators; one line, and not "
        "only separators (spaces, dots, dashes...)",
    )
    category = serializers.ChoiceField(choices=SensitiveWordCategory.choices, required=False)
    action = serializers.ChoiceField(choices=SensitiveWordAction.choices, required=False)
    language = StrictCharField(
        max_length=16,
        allow_blank=True,
        required=False,
        # The service's rule (it lowercases first), here for the schema.
        validators=[RegexValidator(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$", "e.g. en or zh")],
        help_text="e.g. en or zh; empty: any",
    )
    is_active = StrictBooleanField(required=False)
    note = StrictCharField(max_length=MAX_NOTE, allow_blank=True, required=False)


class SensitiveWordOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    word = serializers.CharField()
    normalised = serializers.CharField(help_text="What the matcher compares")
    category = serializers.ChoiceField(choices=SensitiveWordCategory.choices)
    action = serializers.ChoiceField(choices=SensitiveWordAction.choices)
    language = serializers.CharField()
    is_active = serializers.BooleanField()
    source = serializers.CharField(help_text="staff, api, import or a seed list")
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SensitiveWordQuerySerializer(serializers.Serializer):
    category = QueryChoiceField(choices=SensitiveWordCategory.choices, required=False)
    action = QueryChoiceField(choices=SensitiveWordAction.choices, required=False)
    active = QueryBooleanField(required=False)
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=100, validators=[SchemaPattern(NO_NUL)]
    )


# --- classifier models ------------------------------------------------------------------------


class NluModelMetricsSerializer(serializers.Serializer):
    """The cross-validated evaluation in brief; all null until the model is trained."""

    accuracy = serializers.FloatField(allow_null=True)
    macro_f1 = serializers.FloatField(allow_null=True)
    examples = serializers.IntegerField(allow_null=True)
    folds = serializers.IntegerField(allow_null=True)
    confidence_threshold = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(
        allow_null=True, help_text="Share of messages the classifier answers (at the threshold)"
    )
    precision = serializers.FloatField(
        allow_null=True, help_text="How often those answers are right"
    )


class PerIntentMetricsSerializer(serializers.Serializer):
    precision = serializers.FloatField()
    recall = serializers.FloatField()
    f1 = serializers.FloatField()
    support = serializers.IntegerField()


class NluModelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=NluModelStatus.choices)
    is_serving = serializers.BooleanField(help_text="The one model that classifies messages")
    recipe = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField(), help_text="Intents it knows")
    metrics = serializers.SerializerMethodField()
    example_count = serializers.IntegerField()
    intent_count = serializers.IntegerField()
    training_seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField(help_text="Why training failed")
    created_at = serializers.DateTimeField()
    promoted_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(NluModelMetricsSerializer)
    def get_metrics(self, model: NluModel) -> dict[str, Any]:
        metrics = model.metrics if isinstance(model.metrics, dict) else {}
        calibration = metrics.get("calibration") or {}
        return dict(
            NluModelMetricsSerializer(
                {
                    "accuracy": metrics.get("accuracy"),
                    "macro_f1": metrics.get("macro_f1"),
                    "examples": metrics.get("examples"),
                    "folds": metrics.get("folds"),
                    "confidence_threshold": calibration.get("threshold"),
                    "coverage": calibration.get("coverage"),
                    "precision": calibration.get("precision"),
                }
            ).data
        )


class NluModelDetailSerializer(NluModelOutputSerializer):
    per_intent = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=PerIntentMetricsSerializer()))
    def get_per_intent(self, model: NluModel) -> dict[str, Any]:
        metrics = model.metrics if isinstance(model.metrics, dict) else {}
        rows = metrics.get("per_intent") or {}
        return {name: dict(PerIntentMetricsSerializer(row).data) for name, row in rows.items()}
