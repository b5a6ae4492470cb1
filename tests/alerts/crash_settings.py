"""Settings for a worker process that kills itself in the middle of a delivery, for the recovery tests.

``DJANGO_SETTINGS_MODULE=tests.alerts.crash_settings`` with ``DELIVERY_CRASH=before-send`` (the delivery
row is claimed, nothing has reached Twilio) or ``after-send`` (Twilio accepted the SMS, nothing is
recorded): the worker SIGKILLs its whole process group at that point, as a power cut or the OOM killer
would. Only the worker loads this; nothing in the project knows about it.
"""

from tests.settings import *  # noqa: F403

CELERY_IMPORTS = ["tests.alerts.crash_hook"]
