"""Forms of the Mappings area: what a person types, checked before a service is called.

An unknown target code is a form error here (checked against the set's reference list), so
the person sees it beside the field; the services still check what only they can (status,
four eyes, dates taken).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from sync.mappings.csv_io import VALUE_MAX_LENGTH
from sync.mappings.selectors import ReferenceList

CSV_MAX_BYTES = 2 * 1024 * 1024


def date_input() -> forms.DateInput:
    """A browser date picker. Its value must be ISO (`2026-11-01`): the locale's format
    (en-gb: "01/11/2026") is not a valid value, so the picker showed empty and saving the
    form again cleared the date."""
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class EntryForm(forms.Form):
    """One row of a draft: source → target, with optional attributes (a JSON object)."""

    source_value = forms.CharField(max_length=VALUE_MAX_LENGTH)
    target_value = forms.CharField(max_length=VALUE_MAX_LENGTH)
    attributes = forms.CharField(
        required=False, help_text='A JSON object, e.g. {"rate": "20"}; blank for none.'
    )

    def __init__(self, *args: Any, reference: ReferenceList | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = reference

    def clean_target_value(self) -> str:
        value = self.cleaned_data["target_value"]
        if self.reference is not None and value not in self.reference.values:
            raise forms.ValidationError(f"{value!r} is not {self.reference.label}.")
        return value

    def clean_attributes(self) -> dict[str, Any]:
        text = self.cleaned_data["attributes"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise forms.ValidationError('Attributes are a JSON object, e.g. {"rate": "20"}.')
        return value


class EffectiveDateForm(forms.Form):
    effective_from = forms.DateField(widget=date_input())


class VersionForm(forms.Form):
    """A draft's or in-review version's planned date and notes."""

    effective_from = forms.DateField(required=False, widget=date_input())
    notes = forms.CharField(required=False, max_length=4000, widget=forms.Textarea({"rows": 2}))


class CsvImportForm(forms.Form):
    file = forms.FileField(help_text="UTF-8 CSV: source_value,target_value,attributes")
    replace = forms.BooleanField(required=False, label="Remove the rows the file does not list")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload is None:
            return data
        if upload.size > CSV_MAX_BYTES:
            raise forms.ValidationError(f"The file is over {CSV_MAX_BYTES // 1024 // 1024} MB.")
        try:
            data["text"] = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise forms.ValidationError(
                f"The file is not UTF-8 (byte {error.start}): save it as CSV UTF-8."
            ) from error
        return data


class DryRunForm(forms.Form):
    """How many of the newest inbox payloads a dry run reads."""

    limit = forms.IntegerField(
        min_value=1, max_value=10_000, initial=1000, required=False, label="Last"
    )

    def clean_limit(self) -> int:
        return self.cleaned_data["limit"] or self.fields["limit"].initial
