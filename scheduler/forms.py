"""The job list's filters (from the URL, so that they survive a reload) and the actions' small forms."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from scheduler.models import State
from scheduler.selectors import Cursor, JobFilters, JobTarget

STATE_CHOICES = [
    ("", "Any state"),
    ("active", "Waiting or running"),
    ("waiting", "Waiting (scheduled, queued, retrying)"),
    *State.choices,
    ("final", "Over (succeeded, failed, cancelled, aborted, needs attention)"),
]

MAX_BULK = 500


class _ParsedField(forms.Field):
    """Text in the URL, parsed into a value object by ``parse`` (which raises ``ValueError``)."""

    max_length = 300
    message = "Not valid."

    def parse(self, text: str):
        raise NotImplementedError

    def to_python(self, value):
        text = (value or "").strip()
        if not text:
            return None
        if len(text) > self.max_length:
            raise ValidationError(self.message)
        try:
            return self.parse(text)
        except ValueError as exc:
            raise ValidationError(self.message.format(reason=exc)) from None


class CursorField(_ParsedField):
    message = "This page link is not valid; showing the newest jobs."

    def parse(self, text: str) -> Cursor:
        return Cursor.parse(text)


class TargetField(_ParsedField):
    message = "Not a target of jobs: {reason}."

    def parse(self, text: str) -> JobTarget:
        return JobTarget.parse(text)


class JobFilterForm(forms.Form):
    """Bound to ``request.GET``. Invalid filters are dropped with their error shown, never guessed at."""

    q = forms.CharField(required=False, max_length=200, label="Search", strip=True)
    state = forms.ChoiceField(required=False, choices=STATE_CHOICES)
    task = forms.CharField(required=False, max_length=200)
    target = TargetField(required=False, help_text="e.g. alerts.alert:12")
    changed_from = forms.DateField(required=False, label="Changed from (UTC)")
    changed_to = forms.DateField(required=False, label="to")
    unseen = forms.BooleanField(required=False, label="Unseen results only")
    after = CursorField(required=False)
    before = CursorField(required=False)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("changed_from"), cleaned.get("changed_to")
        if start and end and start > end:
            self.add_error("changed_to", "The end of the range comes before its start.")
            del cleaned["changed_from"]  # the range as a whole is ignored
        return cleaned

    def _value(self, name: str):
        # A field with an error counts as not given; the rest of the filters still apply.
        return None if name in self.errors else self.cleaned_data.get(name)

    def filters(self) -> JobFilters:
        self.is_valid()
        return JobFilters(
            state=self._value("state") or "",
            task=self._value("task") or "",
            target=self._value("target"),
            search=self._value("q") or "",
            changed_from=self._value("changed_from"),
            changed_to=self._value("changed_to"),
            unseen=bool(self._value("unseen")),
        )

    def cursors(self) -> tuple[Cursor | None, Cursor | None]:
        self.is_valid()
        return self._value("after"), self._value("before")


class JobIdsField(forms.Field):
    """Job numbers from checkboxes (``ids=3&ids=7``); whether each job exists and may be acted on is the
    service's call, job by job."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        if not all(str(item).isdigit() for item in value):
            raise ValidationError("Select jobs by their numbers.")
        return sorted({int(item) for item in value})

    def validate(self, value: list[int]) -> None:
        super().validate(value)
        if len(value) > MAX_BULK:
            raise ValidationError(f"Select at most {MAX_BULK} jobs at a time.")


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("cancel", "Cancel"), ("delete", "Delete")])
    ids = JobIdsField(error_messages={"required": "Select at least one job first."})
    confirmed = forms.BooleanField(required=False)


class CancelAllForm(forms.Form):
    terminate = forms.BooleanField(
        required=False,
        label="Also stop running jobs at once (SIGTERM to their worker processes): for emergencies only",
    )
