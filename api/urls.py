from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api.views.alerts import AlertViewSet
from api.views.contacts import ContactViewSet
from api.views.jobs import JobViewSet
from api.views.records import DeliveryViewSet, OccurrenceViewSet

app_name = "api"

router = DefaultRouter()
router.include_root_view = False
router.register("contacts", ContactViewSet)
router.register("alerts", AlertViewSet)
router.register("occurrences", OccurrenceViewSet)
router.register("deliveries", DeliveryViewSet)
router.register("jobs", JobViewSet)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
