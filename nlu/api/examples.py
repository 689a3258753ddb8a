"""Example requests and responses of the NLU API for its OpenAPI schema (nlu/api/views.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample


def error(code: str, message: str, status_code: int) -> OpenApiExample:
    """An error response with its stable code."""
    return OpenApiExample(
        code,
        value={"code": code, "message": message, "detail": {}},
        response_only=True,
        status_codes=[str(status_code)],
    )


VALIDATION_ERROR = OpenApiExample(
    "validation_error",
    value={
        "code": "validation_error",
        "message": "Some fields are not valid",
        "detail": {
            "fields": {
                "response_template_en": [
                    "{colour}: no slot of this intent has that name (slots: meal)."
                ]
            }
        },
    },
    response_only=True,
    status_codes=["400"],
)

PARSE_EXAMPLE = {
    "text": "I'd like two classic sets",
    "intent": {"name": "order_meal", "confidence": 0.93},
    "ranking": [
        {"name": "order_meal", "confidence": 0.93},
        {"name": "check_order", "confidence": 0.04},
        {"name": "greeting", "confidence": 0.01},
    ],
    "entities": [
        {"entity": "quantity", "value": "2", "start": 11, "end": 14},
        {"entity": "meal", "value": "classic", "start": 15, "end": 22},
    ],
    "source": "model",
    "model_version": 7,
}

SLOT_EXAMPLE = {
    "name": "meal",
    "label_en": "meal",
    "label_zh": "套餐",
    "slot_type": "choice",
    "choices": [
        {"value": "classic", "en": "Classic set", "zh": "经典套餐"},
        {"value": "for_two", "en": "Set for two", "zh": "双人套餐"},
    ],
    "required": True,
    "is_personal_data": False,
    "prompt_en": "Which set would you like?",
    "prompt_zh": "您想要哪种套餐？",
    "order": 10,
}

INTENT_INPUT_EXAMPLE = {
    "name": "order_meal",
    "display_name": "Order a meal",
    "description": "The user wants food delivered",
    "reply_mode": "template",
    "response_template_en": "One {meal} is on its way.",
    "response_template_zh": "{meal}马上送到。",
    "slots": [SLOT_EXAMPLE],
}

INTENT_EXAMPLE = {
    **INTENT_INPUT_EXAMPLE,
    "confirm_template_en": "",
    "confirm_template_zh": "",
    "active": True,
    "example_count": 12,
    "created_at": "2026-11-22T09:30:00Z",
    "updated_at": "2026-11-22T09:30:00Z",
}

EXAMPLE_EXAMPLE = {
    "id": 412,
    "text": "two classic sets please",
    "entities": [{"start": 4, "end": 11, "entity": "meal", "value": "classic"}],
    "created_at": "2026-11-22T09:30:00Z",
}

WORD_EXAMPLE = {
    "id": 31,
    "word": "spam offer",
    "normalised": "spamoffer",
    "category": "ads",
    "action": "block",
    "language": "en",
    "is_active": True,
    "source": "api",
    "note": "",
    "created_at": "2026-11-22T09:30:00Z",
    "updated_at": "2026-11-22T09:30:00Z",
}

WORD_DUPLICATE = OpenApiExample(
    "sensitive_word_exists",
    value={
        "code": "sensitive_word_exists",
        "message": "'Spam offer' (or a spelling that normalises the same) is already listed "
        "under Advertising.",
        "detail": {
            "fields": {
                "word": [
                    "'Spam offer' (or a spelling that normalises the same) is already "
                    "listed under Advertising."
                ]
            }
        },
    },
    response_only=True,
    status_codes=["409"],
)

MODEL_EXAMPLE = {
    "id": 7,
    "status": "ready",
    "is_serving": True,
    "recipe": "tfidf-char+word/logreg",
    "labels": ["check_order", "goodbye", "greeting", "order_meal", "out_of_scope"],
    "metrics": {
        "accuracy": 0.94,
        "macro_f1": 0.93,
        "examples": 160,
        "folds": 5,
        "confidence_threshold": 0.7,
        "coverage": 0.81,
        "precision": 0.98,
    },
    "example_count": 160,
    "intent_count": 5,
    "training_seconds": 12.4,
    "error": "",
    "created_at": "2026-11-22T09:30:00Z",
    "promoted_at": "2026-11-22T09:35:00Z",
}

TRAINING_EXAMPLE = {
    **MODEL_EXAMPLE,
    "id": 8,
    "status": "training",
    "is_serving": False,
    "recipe": "",
    "labels": [],
    "metrics": dict.fromkeys(MODEL_EXAMPLE["metrics"]),  # type: ignore[arg-type]
    "example_count": 0,
    "intent_count": 0,
    "training_seconds": None,
    "promoted_at": None,
}
