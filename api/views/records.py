"""Occurrences and deliveries: read only; the workers write them."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from alerts.models import Channel, Delivery, DeliveryState, Occurrence
from api.serializers import DeliverySerializer, OccurrenceSerializer
from api.views.base import ModelPermissionsMixin

_ALERT = OpenApiParameter("alert", int, description="Only those of this alert (its id).")


class _OccurrenceFilters(serializers.Serializer):
    alert = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class _DeliveryFilters(_OccurrenceFilters):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)


def _filtered(request, filters_class, queryset, alert_field: str):
    filters = filters_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    values = dict(filters.validated_data)
    if "alert" in values:
        queryset = queryset.filter(**{alert_field: values.pop("alert")})
    return queryset.filter(**values)


@extend_schema_view(list=extend_schema(parameters=[_ALERT]))
class OccurrenceViewSet(ModelPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Occurrence.objects.all()
    serializer_class = OccurrenceSerializer

    def get_queryset(self):
        if self.action != "list":
            return self.queryset
        return _filtered(self.request, _OccurrenceFilters, self.queryset, "alert_id")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _ALERT,
            OpenApiParameter("state", str, enum=DeliveryState.values),
            OpenApiParameter("channel", str, enum=Channel.values),
        ]
    )
)
class DeliveryViewSet(ModelPermissionsMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Delivery.objects.all()
    serializer_class = DeliverySerializer

    def get_queryset(self):
        if self.action != "list":
            return self.queryset
        return _filtered(self.request, _DeliveryFilters, self.queryset, "occurrence__alert_id")
