"""Forms of the Ownership area: a proposed change, checked before the service is called.

The model's own validators (snake-case names, known systems, end after start) run here so a
person sees each error beside its field; the services still check what only they can
(status, four eyes, overlapping rules on publishing).
"""

from __future__ import annotations

from django import forms

from sync.mappings.models import OwnershipChange


class OwnershipChangeForm(forms.ModelForm):
    class Meta:
        model = OwnershipChange
        fields = ("entity", "field", "owner_system", "effective_from", "effective_to", "reason")
        widgets = {
            # ISO values: a date picker ignores the locale's "01/11/2026".
            "effective_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "effective_to": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "reason": forms.Textarea({"rows": 2}),
        }


class WithdrawForm(forms.Form):
    note = forms.CharField(required=False, max_length=500)
