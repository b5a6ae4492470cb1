from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from tests.conftest import require

BASE_DIR = Path(__file__).resolve().parents[2]


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


def test_the_first_runs_hint_to_change_the_password_works_as_typed(tmp_path):
    """The hint `make run` prints is run as a user would type it, without SECRET_KEY or DEBUG in the shell."""
    venv = BASE_DIR / ".venv" / "bin" / "python"
    require("make and the project's .venv", None if venv.exists() and shutil.which("make") else f"no make or {venv}")
    settings_env = {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}
    # Run as a user types it, not as a sub-make of `make test` (which would print "make[1]: Leaving directory").
    make_env = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}
    env = {key: value for key, value in os.environ.items() if key not in settings_env | make_env | {"ADMIN_PASSWORD"}}
    # A fresh local install of its own; and the suite runs in the venv `make test` has just installed, so make
    # is told not to check it again (-o).
    env.update(VAR_DIR=str(tmp_path), MAKEFLAGS="-o .venv/.runtime")

    def shell(command: str, stdin: str = "") -> str:
        done = subprocess.run(
            command, shell=True, env=env, cwd=BASE_DIR, input=stdin, capture_output=True, text=True,
            start_new_session=True,  # no terminal: getpass reads the typed password from stdin
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    shell('make manage ARGS="migrate --noinput"')
    printed = shell("make manage ARGS=ensure_admin")
    hint = printed.split("change it with:\n")[1].strip()
    assert hint == 'make manage ARGS="changepassword admin"'

    new_password = secrets.token_urlsafe(16)
    shell(hint, stdin=f"{new_password}\n{new_password}\n")

    check = f"from django.contrib.auth import authenticate as a; print(a(username='admin', password='{new_password}'))"
    assert shell(f'make manage ARGS="shell -c \\"{check}\\""').strip().endswith("admin")
