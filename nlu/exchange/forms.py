"""Admin forms: the upload of an examples file, an example with its entities."""

from __future__ import annotations

from typing import Any

from django import forms

from nlu.exchange.formats import MAX_FILE_BYTES, Format
from nlu.exchange.rows import entities_clean
from nlu.models import IntentExample

FORMAT_CHOICES = [
    ("", "Detect from the file"),
    (Format.CSV, "CSV (text,intent)"),
    (Format.JSONL, "JSONL"),
    (Format.RASA, "Rasa YAML NLU"),
    (Format.DIALOGFLOW, "Dialogflow ES agent (.zip)"),
]


class ExamplesImportForm(forms.Form):
    file = forms.FileField(
        help_text=".csv with a text,intent header (UTF-8), .jsonl, Rasa .yml or a Dialogflow "
        f"agent .zip; at most {MAX_FILE_BYTES // 2**20} MB."
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)
    languages = forms.CharField(
        required=False,
        help_text='Dialogflow only: e.g. "en" or "zh" (takes zh-cn, zh-hk too); empty: all.',
    )
    create_intents = forms.BooleanField(
        label="Create missing intents",
        required=False,
        help_text="Created inactive, with language-model replies: review them, then activate.",
    )
    dry_run = forms.BooleanField(
        label="Dry run", required=False, initial=True, help_text="Report only; write nothing."
    )

    def clean_file(self) -> Any:
        return checked_upload(self.cleaned_data["file"])

    def clean_languages(self) -> list[str]:
        raw = self.cleaned_data["languages"]
        return [part.strip().lower() for part in raw.replace(";", ",").split(",") if part.strip()]


class IntentExampleForm(forms.ModelForm):
    """Keeps an example's entities consistent with its text."""

    class Meta:
        model = IntentExample
        fields = ("intent", "text", "entities")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text = data.get("text")
        if "entities" in self.fields:
            entities = entities_clean(text or "", data.get("entities") or [])
            if entities is None:
                self.add_error(
                    "entities",
                    'A list of {"start", "end", "entity", "value"} within the text, e.g. '
                    '[{"start": 0, "end": 5, "entity": "city", "value": "Paris"}].',
                )
            else:
                data["entities"] = entities
        elif "text" in self.changed_data and self.instance.entities:
            # Not shown here (the inline): their offsets would point into the old text.
            self.instance.entities = []
        return data


def checked_upload(upload: Any, limit: int = MAX_FILE_BYTES) -> Any:
    """An uploaded import file, refused when over `limit` bytes (before it is read)."""
    if upload.size > limit:
        raise forms.ValidationError(f"The file is larger than {limit // 2**20} MB; split it.")
    return upload
