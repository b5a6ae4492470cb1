"""API tokens: bearer authentication, revocation, the admin and the management command; session and CSRF."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from api.models import ApiToken
from api.tokens import api_token_create, api_token_revoke, token_digest

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_only_the_tokens_hash_is_kept(operator):
    row, token = api_token_create(user=operator, name="bot")
    assert token not in str(ApiToken.objects.filter(pk=row.pk).values().get())
    assert row.digest == token_digest(token)
    assert bearer(token).get("/api/v1/alerts/").status_code == 200


def test_a_revoked_or_unknown_token_gets_401(operator):
    row, token = api_token_create(user=operator, name="bot")
    assert api_token_revoke(token_id=row.pk)
    assert bearer(token).get("/api/v1/alerts/").status_code == 401
    assert bearer("alrt_not-a-token").get("/api/v1/alerts/").status_code == 401


def test_an_inactive_users_token_gets_401(operator):
    _, token = api_token_create(user=operator, name="bot")
    operator.is_active = False
    operator.save()
    assert bearer(token).get("/api/v1/alerts/").status_code == 401


def test_the_command_creates_a_working_token_and_revokes_it(operator, capsys):
    call_command("api_token", "create", "operator", "--name", "chat bot")
    token = capsys.readouterr().out.strip()
    assert bearer(token).get("/api/v1/contacts/").status_code == 200
    row = ApiToken.objects.get()
    assert row.name == "chat bot"
    call_command("api_token", "revoke", row.prefix)
    assert bearer(token).get("/api/v1/contacts/").status_code == 401


def test_the_admin_shows_a_new_token_once(client, django_user_model, operator):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    response = client.post("/admin/api/apitoken/add/", {"user": operator.pk, "name": "grafana"}, follow=True)
    message = next(str(m) for m in response.context["messages"])
    token = message.split(": ", 1)[1].split(" ")[0]
    assert bearer(token).get("/api/v1/jobs/").status_code == 200
    row = ApiToken.objects.get()
    client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [row.pk]})
    assert bearer(token).get("/api/v1/jobs/").status_code == 401


def test_the_browser_session_works_but_writes_need_csrf(operator):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(operator)
    assert browser.get("/api/v1/contacts/").status_code == 200
    response = browser.post("/api/v1/contacts/", {"name": "Ada"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_schema_and_the_swagger_ui_are_served_without_a_cdn(client):
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/alerts/{id}/send-now/" in schema.json()["paths"]
    page = client.get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "every script and style is served from here"
