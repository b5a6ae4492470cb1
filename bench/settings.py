"""The benchmark's settings: the project's own, plus django-celery-results for the plain-Celery baseline.

Only ``bench.plain_sms`` stores a result (``CELERY_TASK_IGNORE_RESULT`` stays on for everything else), so
the tracked jobs and the other baselines run exactly as in the service.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]
CELERY_RESULT_BACKEND = "django-db"
