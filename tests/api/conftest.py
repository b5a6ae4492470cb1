"""Users with the admin's permissions (all, view only, none), their tokens, and API clients."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from api.tokens import api_token_create

MODELS = ("contact", "alert", "occurrence", "delivery", "job")


def _user(django_user_model, name: str, verbs: tuple[str, ...]):
    user = django_user_model.objects.create_user(name, password="pw-for-tests-only", is_staff=True)
    codenames = [f"{verb}_{model}" for verb in verbs for model in MODELS]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, token = api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def operator(django_user_model):
    return _user(django_user_model, "operator", ("view", "add", "change", "delete"))


@pytest.fixture
def viewer(django_user_model):
    return _user(django_user_model, "viewer", ("view",))


@pytest.fixture
def api(operator) -> APIClient:
    return client_for(operator)


@pytest.fixture
def viewer_api(viewer) -> APIClient:
    return client_for(viewer)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()
