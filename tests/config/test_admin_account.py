from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_admin_gets_a_random_password_printed_once(monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    output = ensure_admin()
    password = output.split("with password ")[1].split()[0]
    assert len(password) >= 16
    assert authenticate(username="admin", password=password) is not None
    assert password not in ensure_admin()


@pytest.mark.django_db
def test_each_fresh_install_gets_a_different_password(monkeypatch):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    first = ensure_admin().split("with password ")[1].split()[0]
    get_user_model().objects.all().delete()
    second = ensure_admin().split("with password ")[1].split()[0]
    assert first != second


@pytest.mark.django_db
def test_admin_password_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "correct horse battery staple")
    output = ensure_admin()
    assert "correct horse" not in output
    assert authenticate(username="admin", password="correct horse battery staple") is not None


@pytest.mark.django_db
def test_an_existing_admin_is_left_alone(monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "first password 1")
    ensure_admin()
    monkeypatch.setenv("ADMIN_PASSWORD", "second password 2")
    assert "exists already" in ensure_admin()
    assert authenticate(username="admin", password="first password 1") is not None
