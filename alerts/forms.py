"""The alert form: times typed in the alert's timezone, and the schedule validated as a whole."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.utils import timezone

from alerts import schedules
from alerts.models import Alert, EscalationStep, ScheduleKind

LOCAL_FIELDS = ("send_at", "relative_base", "starts_at", "expires_at")
SCHEDULE_FIELDS = (
    "timezone", "schedule_kind", "send_at", "relative_base", "relative_spec", "crontab",
    "interval_every", "interval_unit", "starts_at", "expires_at",
)  # fmt: skip


class LocalDateTimeField(forms.SplitDateTimeField):
    """A wall-clock date and time in the alert's timezone; the form resolves it once it knows the zone."""

    widget = AdminSplitDateTime

    def compress(self, data_list):
        if data_list and all(data_list):
            return datetime.combine(*data_list)
        return None


class AlertForm(forms.ModelForm):
    send_if_past = forms.BooleanField(
        required=False,
        label="Send now if the time has passed",
        help_text="Without this, a “once” time in the past is refused.",
    )

    class Meta:
        model = Alert
        fields = [
            "name", "message", "sms_text", "email_subject", "email_body", "send_sms", "send_email", "send_webhook",
            "fallback_to_other_channel", "urgent", "recipients", "escalation_policy", *SCHEDULE_FIELDS,
            "max_attempts", "retry_delay",
        ]  # fmt: skip
        field_classes = {name: LocalDateTimeField for name in LOCAL_FIELDS}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in LOCAL_FIELDS:
                value = getattr(self.instance, name)
                if value is not None:
                    self.initial[name] = schedules.wall_clock(value, self.instance.timezone)

    def clean(self) -> dict:
        data = super().clean()
        tz = data.get("timezone")
        if tz is None:
            return data
        for name in LOCAL_FIELDS:
            if isinstance(data.get(name), datetime) and timezone.is_naive(data[name]):
                data[name] = schedules.resolve_local(data[name], tz)
        if not (data.get("send_sms") or data.get("send_email") or data.get("send_webhook")):
            self.add_error("send_sms", "Choose at least one channel: SMS, email or webhook.")
        policy = data.get("escalation_policy")
        if policy is not None and not policy.steps.exists():
            self.add_error("escalation_policy", f"The policy “{policy}” has no step yet: give it one first.")
        kind = data.get("schedule_kind")
        now = timezone.now()
        check = {
            ScheduleKind.ONCE: self._clean_once,
            ScheduleKind.RELATIVE: self._clean_relative,
            ScheduleKind.CRONTAB: self._clean_crontab,
            ScheduleKind.INTERVAL: self._clean_interval,
        }.get(kind)
        if check is not None:
            check(data, tz, now)
        if data.get("expires_at") and data["expires_at"] <= now:
            self.add_error("expires_at", "The expiry has passed already.")
        return data

    def _times_changed(self) -> bool:
        return not self.instance.pk or any(name in self.changed_data for name in SCHEDULE_FIELDS)

    def _clean_once(self, data: dict, tz, now: datetime) -> None:
        send_at = data.get("send_at")
        if send_at is None:
            if "send_at" not in self.errors:
                self.add_error("send_at", "A “once” alert needs the date and time to send.")
            return
        if send_at <= now and self._times_changed():
            if data.get("send_if_past"):
                data["send_at"] = now
            else:
                local = schedules.wall_clock(send_at, tz)
                self.add_error(
                    "send_at",
                    f"This time has passed ({local:%Y-%m-%d %H:%M} in {tz}). Choose a later time, or tick "
                    "“Send now if the time has passed”.",
                )

    def _clean_relative(self, data: dict, tz, now: datetime) -> None:
        spec, base = data.get("relative_spec") or "", data.get("relative_base")
        alert = Alert(timezone=tz, relative_spec=spec, relative_base=base)
        try:
            send_at = schedules.resolve_relative(alert, now=now)
        except schedules.ScheduleError:
            return  # the model's clean reports it, for every way an alert is saved
        data["relative_base"] = alert.relative_base
        if send_at <= now and self._times_changed():
            local = schedules.wall_clock(send_at, tz)
            self.add_error("relative_spec", f"That lands in the past ({local:%Y-%m-%d %H:%M} in {tz}).")
            return
        data["send_at"] = send_at

    def _clean_crontab(self, data: dict, tz, now: datetime) -> None:
        try:
            schedules.parse_crontab(data.get("crontab") or "")
        except schedules.ScheduleError as exc:
            self.add_error("crontab", str(exc))
        data["send_at"] = None

    def _clean_interval(self, data: dict, tz, now: datetime) -> None:
        if not data.get("interval_every"):
            self.add_error("interval_every", "How many units between occurrences, e.g. 6.")
        if not data.get("interval_unit"):
            self.add_error("interval_unit", "Minutes, hours or days.")
        data["starts_at"] = data.get("starts_at") or now
        data["send_at"] = None


def schedule_errors(form: AlertForm) -> dict[str, list[str]]:
    """The form's errors that concern the schedule: what the live preview shows."""
    form.is_valid()
    return {name: list(errors) for name, errors in form.errors.items() if name in (*SCHEDULE_FIELDS, "__all__")}


def unsaved_alert(form: AlertForm) -> Alert:
    """An Alert carrying the form's cleaned schedule, for previews; never saved."""
    values = {name: form.cleaned_data.get(name) for name in SCHEDULE_FIELDS if name in form.cleaned_data}
    return Alert(**values)


class EscalationStepForm(forms.ModelForm):
    class Meta:
        model = EscalationStep
        fields = [
            "position",
            "notify_alert_recipients",
            "contacts",
            "send_sms",
            "send_email",
            "send_webhook",
            "wait_minutes",
        ]

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("notify_alert_recipients") and not data.get("contacts"):
            raise forms.ValidationError(
                "This step notifies nobody: tick “the alert's recipients”, choose contacts, or both."
            )
        return data


class EscalationStepFormSet(forms.BaseInlineFormSet):
    """Two steps at one position are refused by the formset's own unique check (the model's constraint)."""

    def clean(self) -> None:
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not self._should_delete_form(f)]
        if not kept and not any(f.errors for f in self.forms):
            raise forms.ValidationError("A policy needs at least one step.")
