from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import Env


def test_missing_values_take_their_defaults():
    env = Env({})
    assert env.bool("DEBUG", default=False) is False
    assert env.int("PORT", 25) == 25
    assert env.list("HOSTS", ["a"]) == ["a"]
    assert env.choice("MODE", "auto", choices=("auto", "off")) == "auto"
    assert env.url("BROKER", "filesystem://", schemes=("filesystem",)) == "filesystem://"


@pytest.mark.parametrize("raw, expected", [("true", True), ("YES", True), ("1", True), ("off", False), ("0", False)])
def test_booleans_are_read_in_the_usual_spellings(raw, expected):
    assert Env({"DEBUG": raw}).bool("DEBUG", default=not expected) is expected


@pytest.mark.parametrize(
    "name, raw, read, message",
    [
        ("DEBUG", "maybe", lambda env: env.bool("DEBUG", default=False), "DEBUG='maybe' is not a boolean"),
        ("EMAIL_PORT", "25a", lambda env: env.int("EMAIL_PORT", 25), "EMAIL_PORT='25a' is not a whole number"),
        ("EMAIL_PORT", "70000", lambda env: env.int("EMAIL_PORT", 25, maximum=65535), "EMAIL_PORT=70000 is above"),
        ("ALLOWED_HOSTS", "a,,b", lambda env: env.list("ALLOWED_HOSTS", []), "ALLOWED_HOSTS='a,,b' has an empty item"),
        ("MODE", "Auto", lambda env: env.choice("MODE", "auto", choices=("auto", "off")), "MODE='Auto' is not one of"),
        (
            "CELERY_BROKER_URL",
            "rabbit://x",
            lambda env: env.url("CELERY_BROKER_URL", "", schemes=("amqp", "redis")),
            "CELERY_BROKER_URL must start with one of amqp://, redis://",
        ),
    ],
)
def test_malformed_values_stop_with_a_message_naming_the_variable(name, raw, read, message):
    with pytest.raises(ImproperlyConfigured) as error:
        read(Env({name: raw}))
    assert message in str(error.value)


def test_a_broken_url_does_not_echo_its_password():
    with pytest.raises(ImproperlyConfigured) as error:
        Env({"DATABASE_URL": "mysql://user:hunter2@db/x"}).url("DATABASE_URL", "", schemes=("postgres",))
    assert "hunter2" not in str(error.value)


def test_secrets_can_come_from_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    assert Env({"TWILIO_AUTH_TOKEN_FILE": str(secret)}).str("TWILIO_AUTH_TOKEN") == "s3cret"


def test_an_unreadable_secret_file_is_an_error_naming_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="TWILIO_AUTH_TOKEN_FILE: cannot read"):
        Env({"TWILIO_AUTH_TOKEN_FILE": str(tmp_path / "missing")}).str("TWILIO_AUTH_TOKEN")
