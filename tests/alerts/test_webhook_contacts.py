"""A contact's webhook URL and signing secret in the admin, and the migration that adds them (the API:
tests/api/test_webhook.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from alerts.models import Contact
from tests.alerts.admin_forms import errors_of
from tests.alerts.factories import ContactFactory

CONTACT = {"name": "Ada", "timezone": "UTC", "is_active": "on"}


@pytest.mark.django_db
def test_each_contact_gets_its_own_generated_secret():
    first, second = ContactFactory(), ContactFactory()
    assert first.webhook_secret.startswith("whsec_") and len(first.webhook_secret) > 40
    assert first.webhook_secret != second.webhook_secret


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, words", [("hooks.example.com/x", "starts with https://"), ("https://", "has no host")], ids=["scheme", "host"]
)
def test_the_admin_refuses_a_webhook_url_without_a_scheme_or_a_host(admin_client, url, words):
    response = admin_client.post("/admin/alerts/contact/add/", {**CONTACT, "webhook_url": url})
    assert words in errors_of(response)["webhook_url"][0]
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_the_admin_saves_a_webhook_url_and_shows_the_secret_without_letting_it_be_typed(admin_client):
    url = "https://hooks.example.com/alerts/ada"
    response = admin_client.post("/admin/alerts/contact/add/", {**CONTACT, "webhook_url": url, "webhook_secret": "x"})
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert contact.webhook_url == url and contact.webhook_secret.startswith("whsec_"), "a typed secret is ignored"
    page = admin_client.get(f"/admin/alerts/contact/{contact.pk}/change/").content.decode()
    assert contact.webhook_secret in page and 'name="webhook_secret"' not in page


@pytest.mark.django_db
def test_rotating_gives_each_selected_contact_a_new_secret_of_its_own(admin_client):
    first, second, untouched = ContactFactory(), ContactFactory(), ContactFactory()
    before = {c.pk: c.webhook_secret for c in (first, second, untouched)}
    response = admin_client.post(
        "/admin/alerts/contact/",
        {"action": "rotate_webhook_secret", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert "new webhook signing secret" in response.content.decode()
    after = dict(Contact.objects.values_list("pk", "webhook_secret"))
    assert after[first.pk] != before[first.pk] and after[second.pk] != before[second.pk]
    assert after[first.pk] != after[second.pk]
    assert after[untouched.pk] == before[untouched.pk]


@pytest.mark.django_db
def test_the_contacts_list_shows_a_webhooks_host_not_its_secret_path(admin_client):
    ContactFactory(webhook_url="https://hooks.example.com/services/T0/B0/s3cr3t")
    page = admin_client.get("/admin/alerts/contact/").content.decode()
    assert "hooks.example.com" in page and "s3cr3t" not in page


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_each_existing_contact_its_own_secret():
    before, after = [("alerts", "0010_delivery_error_code")], [("alerts", "0011_webhook_channel")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("alerts", "Contact")
        for name in ("Ada", "Bo", "Cy"):
            old.objects.create(name=name, timezone="UTC")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        secrets = list(Contact.objects.values_list("webhook_secret", flat=True))
        assert len(secrets) == len(set(secrets)) == 3
        assert all(secret.startswith("whsec_") for secret in secrets)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
