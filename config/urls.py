from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from api.metrics.views import metrics
from api.views.workers import workers_page
from config.login import ThrottledAuthenticationForm
from config.views import healthz

# The admin's "View site" and the bare address both lead to the job list.
admin.site.site_url = "/jobs/"
# The only login of the service (the job pages send visitors to it): failed attempts throttle the next ones.
admin.site.login_form = ThrottledAuthenticationForm

urlpatterns = [
    path("", RedirectView.as_view(url="/jobs/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("jobs/workers/", workers_page, name="jobs_workers"),
    path("jobs/", include("scheduler.urls")),
    path("alerts/", include("alerts.urls")),
    path("api/v1/", include("api.urls")),
]
