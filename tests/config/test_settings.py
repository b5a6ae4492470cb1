"""Start-up behaviour, checked in fresh processes: settings are read once, at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.test import override_settings

from config.checks import check_queues, check_time_zone, check_twilio

BASE_DIR = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, len(s.SECRET_KEY))"
)


def start(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "SECRET_KEY", "DEBUG"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path / "var"), **overrides})
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )


def test_local_defaults_need_no_server_and_keep_a_generated_secret_key(tmp_path):
    first = start(tmp_path, DEBUG="true")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "67"]
    key_file = tmp_path / "var" / "secret_key"
    key = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert start(tmp_path, DEBUG="true").returncode == 0
    assert key_file.read_text() == key


def test_secret_key_is_required_when_debug_is_off(tmp_path):
    result = start(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("DEBUG", "sometimes", "DEBUG='sometimes' is not a boolean"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL must start with one of sqlite://"),
        ("CELERY_BROKER_URL", "sqs://queue", "CELERY_BROKER_URL must start with one of filesystem://"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT='smtp' is not a whole number"),
        ("JOB_ETA_HORIZON_SECONDS", "0", "JOB_ETA_HORIZON_SECONDS=0 is below the minimum of 1"),
        ("PUBLIC_BASE_URL", "example.com", "PUBLIC_BASE_URL must start with one of http://, https://"),
    ],
)
def test_a_malformed_variable_stops_start_up_naming_it(tmp_path, variable, value, message):
    result = start(tmp_path, SECRET_KEY="x" * 50, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def printed_setting(tmp_path: Path, expression: str, *, unset: set[str], **overrides: str) -> str:
    """What ``expression`` (of the settings, ``s``) prints in a fresh process with the variables ``unset``
    removed from this one's environment and ``overrides`` added."""
    script = f"import json, django; django.setup(); from django.conf import settings as s; print({expression})"
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x" * 50, "VAR_DIR": str(tmp_path),
                **overrides})  # fmt: skip
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def postgres_settings(tmp_path: Path, url: str, **overrides: str) -> dict[str, object]:
    keys = ("ENGINE", "NAME", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS")
    expression = f"json.dumps({{key: s.DATABASES['default'][key] for key in {keys!r}}})"
    return json.loads(
        printed_setting(tmp_path, expression, unset={"DATABASE_PREPARED_STATEMENTS"}, DATABASE_URL=url, **overrides)
    )


def test_webhooks_to_private_networks_are_refused_in_production_unless_allowed(tmp_path):
    def allowed(**overrides: str) -> str:
        unset = {"DEBUG", "WEBHOOK_ALLOW_PRIVATE_NETWORKS"}
        return printed_setting(tmp_path, "s.WEBHOOK_ALLOW_PRIVATE_NETWORKS", unset=unset, **overrides)

    assert allowed() == "False"
    assert allowed(WEBHOOK_ALLOW_PRIVATE_NETWORKS="true") == "True"
    assert allowed(DEBUG="true") == "True"
    assert allowed(DEBUG="true", WEBHOOK_ALLOW_PRIVATE_NETWORKS="false") == "False"


def test_postgres_urls_keep_connections_with_health_checks_and_prepare_repeated_statements(tmp_path):
    assert postgres_settings(tmp_path, "postgres://u@db.internal:5432/alerts") == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "alerts", "CONN_MAX_AGE": 300, "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "server_side_binding": True, "prepare_threshold": 5, "options": "-c plan_cache_mode=force_custom_plan",
        },
    }  # fmt: skip


def test_prepared_statements_can_be_switched_off_for_a_pooler_and_the_url_options_are_kept(tmp_path):
    url = "postgres://u@pgbouncer:6432/alerts?sslmode=require"
    assert postgres_settings(tmp_path, url, DATABASE_PREPARED_STATEMENTS="false")["OPTIONS"] == {"sslmode": "require"}
    assert postgres_settings(tmp_path, url + "&prepare_threshold=20")["OPTIONS"] == {
        "server_side_binding": True, "prepare_threshold": 20, "sslmode": "require",
        "options": "-c plan_cache_mode=force_custom_plan",
    }  # fmt: skip


def test_time_zone_other_than_utc_is_refused():
    with override_settings(TIME_ZONE="Europe/Paris", USE_TZ=False):
        ids = [message.id for message in check_time_zone(None)]
    assert ids == ["project.E001", "project.E002"]
    assert check_time_zone(None) == []


def test_queues_needed_by_the_engine_must_be_configured():
    with override_settings(JOB_QUEUES=["sms"]):
        [error] = check_queues(None)
    assert error.level == checks.ERROR
    assert "default, maintenance" in error.msg


def test_partial_twilio_configuration_is_a_warning():
    with override_settings(TWILIO_ACCOUNT_SID="AC123", TWILIO_AUTH_TOKEN="", TWILIO_FROM_NUMBER=""):
        [warning] = check_twilio(None)
    assert "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER missing" in warning.msg
    with override_settings(TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="", TWILIO_FROM_NUMBER=""):
        assert check_twilio(None) == []
