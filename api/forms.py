"""The admin's alert form, taking the API's times: ISO 8601 instead of a split date and time.

Everything else (the checks, the model's ``full_clean``, the save) is the admin form's own, so an alert
the API accepts is one the admin would accept, with the same messages.
"""

from __future__ import annotations

from datetime import datetime

from django import forms

from alerts.forms import LOCAL_FIELDS, AlertForm


class IsoDateTimeField(forms.Field):
    """A datetime parsed by the serializer. Left naive, it is a wall-clock time in the alert's timezone,
    which ``AlertForm.clean`` resolves as it does for the admin; with an offset, it is that instant."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not isinstance(value, datetime):
            raise forms.ValidationError("Enter a date and time in ISO 8601, e.g. 2030-06-01T09:00.")
        return value


class AlertApiForm(AlertForm):
    class Meta(AlertForm.Meta):
        field_classes = {name: IsoDateTimeField for name in LOCAL_FIELDS}
