from __future__ import annotations

from rest_framework import viewsets

from alerts.models import Contact
from api.serializers import ContactSerializer
from api.views.base import ModelPermissionsMixin


class ContactViewSet(ModelPermissionsMixin, viewsets.ModelViewSet):
    """Contacts: who receives alerts. Deleting one deletes its delivery records too, as in the admin."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
