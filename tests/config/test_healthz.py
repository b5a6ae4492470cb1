from __future__ import annotations

import pytest
from django.db import connection

from config import broker as broker_config
from tests.conftest import broker_down


@pytest.mark.django_db
def test_healthz_answers_ok_naming_each_dependency(client, broker):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_broker_when_it_is_down(client, tmp_path):
    with broker_down():
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "checks": {"database": "ok", "broker": "down"}}


def test_healthz_answers_503_naming_the_database_when_it_is_down(client, django_db_blocker, tmp_path):
    original = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="9")
    try:
        with django_db_blocker.unblock():
            response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert response.json() == {"ok": False, "checks": {"database": "down", "broker": "ok"}}


@pytest.mark.django_db
def test_healthz_needs_no_login_and_shows_no_settings(client, settings):
    settings.TWILIO_AUTH_TOKEN = "token-that-must-not-leak"
    response = client.get("/healthz")
    assert response.status_code == 200
    assert b"token-that-must-not-leak" not in response.content
    assert broker_config.EMBEDDED_BROKER_URL not in response.content.decode()
