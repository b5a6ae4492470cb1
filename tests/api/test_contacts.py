"""Contacts through the API: the model's validation, as in the admin, with errors keyed by field."""

from __future__ import annotations

import pytest

from alerts.models import Contact

pytestmark = pytest.mark.django_db


def test_a_contacts_phone_is_stored_in_e164(api):
    response = api.post("/api/v1/contacts/", {"name": "Ada", "phone": "+44 20 7946 0958"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["phone"] == Contact.objects.get().phone == "+442079460958"


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"name": "Ada", "phone": "12"}, "phone", "international form"),
        ({"name": "Ada", "timezone": "Mars/Olympus"}, "timezone", "Invalid timezone"),
        ({"name": "Ada", "email": "not an address"}, "email", "valid email"),
        ({"phone": "+442079460958"}, "name", "required"),
    ],
)
def test_invalid_contacts_get_errors_keyed_by_field(api, body, field, words):
    response = api.post("/api/v1/contacts/", body, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Contact.objects.exists()


def test_recipients_ids_out_of_any_range_are_a_field_error_not_a_crash(api):
    response = api.post("/api/v1/alerts/", {"recipients": [2**70]}, format="json")
    assert response.status_code == 400
    assert "recipients" in response.json()
