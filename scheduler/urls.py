from __future__ import annotations

from django.urls import path

from scheduler import matching, views

app_name = "scheduler"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("rows/", views.job_rows, name="job_rows"),
    path("cancel-all/", views.jobs_cancel_all, name="jobs_cancel_all"),
    path("bulk/", views.jobs_bulk, name="jobs_bulk"),
    path("matching/<str:action>/", matching.jobs_matching, name="jobs_matching"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/live/", views.job_live, name="job_live"),
    path("<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("<int:pk>/run-now/", views.job_run_now, name="job_run_now"),
    path("<int:pk>/delete/", views.job_delete, name="job_delete"),
    path("<int:pk>/settle/", views.job_settle, name="job_settle"),
]
