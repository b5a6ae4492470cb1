"""Settings, driven by environment variables with safe local defaults (see the README's table)."""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config import broker
from config.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()

VAR_DIR = Path(env.str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    key = env.str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (set DEBUG=true for local use)")
    # A local key, made once and kept out of the repository, so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
PUBLIC_BASE_URL = env.url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "config.apps.ProjectConfig",
    "scheduler",
    "alerts",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scheduler.context_processors.job_counters",
            ],
        },
    },
]


def _database(url: str) -> dict[str, object]:
    try:
        config = dj_database_url.parse(url)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # WAL lets readers work while one process writes; IMMEDIATE takes the write lock when a
        # transaction begins instead of failing halfway through it; the timeout makes web, worker and
        # beat wait for each other instead of raising "database is locked".
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif engine == "django.db.backends.postgresql":
        # Workers keep their connection between tasks instead of opening one per task.
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 300, minimum=0)
        config["CONN_HEALTH_CHECKS"] = True
        if env.bool("DATABASE_PREPARED_STATEMENTS", True):
            # Parameters sent apart from the statement, and a statement that a connection runs again and
            # again (every job's claim, read and outcome) parsed once, on its fifth run. Each run is still
            # planned for its own values (force_custom_plan): PostgreSQL's generic plans, cheaper for the
            # job's statements, made the /metrics scrape three times slower (docs/benchmarks.md); workers
            # set their own mode on their connections (DATABASE_WORKER_PLAN_CACHE_MODE, below). Off
            # behind a pooler in transaction mode that cannot keep prepared statements (PgBouncer before
            # 1.21 or without max_prepared_statements): Django's default then, parameters bound in the client.
            config["OPTIONS"] = {
                "server_side_binding": True, "prepare_threshold": 5, "options": "-c plan_cache_mode=force_custom_plan",
                **config.get("OPTIONS", {}),
            }  # fmt: skip
    else:
        raise ImproperlyConfigured(f"DATABASE_URL: only PostgreSQL and SQLite are supported, not {engine}")
    return config


DATABASE_URL = env.url(
    "DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}", schemes=("sqlite", "postgres", "postgresql")
)
DATABASES = {"default": _database(DATABASE_URL)}
# A Celery worker's connections (config/celery.py) let PostgreSQL plan a prepared statement once and reuse the
# plan where that costs no more than planning each run ("auto"): the jobs' keyed statements, the bulk of a
# worker's, are planned once per connection instead of once per job.
DATABASE_WORKER_PLAN_CACHE_MODE = env.choice(
    "DATABASE_WORKER_PLAN_CACHE_MODE", "auto", choices=("auto", "force_custom_plan", "force_generic_plan")
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Stored times are UTC; a system check (config/checks.py) refuses anything else.
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "admin:login"
# Failed logins throttle the next attempts (config/login.py): this many failures within the window, per
# username or per client address, and further attempts wait until the oldest of them leaves the window.
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", 15 * 60, minimum=1)  # seconds

# --- The REST API (api/) -----------------------------------------------------------------------------------
# Programs send `Authorization: Bearer <token>`; the browser (the Swagger UI) uses its session, with CSRF.
# Permissions are the admin's model permissions (api/permissions.py); anonymous requests get 401.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alerting service API",
    "DESCRIPTION": "Contacts, alerts, their occurrences and deliveries, and the jobs that run them.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The Swagger UI from the drf-spectacular-sidecar package's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AlertStateEnum": "alerts.models.AlertState",
        "DeliveryStateEnum": "alerts.models.DeliveryState",
        "JobStateEnum": "scheduler.models.State",
    },
}

# --- Metrics (/metrics) -------------------------------------------------------------------------------------
# Prometheus scrapes with `Authorization: Bearer <METRICS_TOKEN>`, or from one of the allowed addresses.
# Neither set: /metrics answers 403 to everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN")
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", [])

if not DEBUG:
    SESSION_COOKIE_SECURE = PUBLIC_BASE_URL.startswith("https://")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # Twilio's SDK logs every request's method, URL, headers and status at INFO: ten lines per SMS that
        # say nothing the delivery's row and the job's timeline do not. Its warnings and errors still show.
        "twilio.http_client": {"level": "WARNING"},
        # Celery's "Task ... received" line: the job's timeline records receipt (worker, time, ETA), so a
        # worker logs one INFO line per task, "succeeded in" (failures and retries log at WARNING/ERROR).
        "celery.worker.strategy": {"level": "WARNING"},
    },
}

# --- Email -------------------------------------------------------------------------------------------
EMAIL_HOST = env.str("EMAIL_HOST")
EMAIL_PORT = env.int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 30, minimum=1)
# Without an SMTP host, mail goes to the console: nothing leaves a developer's machine by accident.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "alerts@localhost")

# --- Twilio ------------------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER")
TWILIO_API_BASE_URL = env.url("TWILIO_API_BASE_URL", "", schemes=("http", "https")).rstrip("/")
# A provider that does not answer within this many seconds is treated as down: the delivery is retried.
TWILIO_HTTP_TIMEOUT = env.float("TWILIO_HTTP_TIMEOUT", 10.0, minimum=0.1)
# Twilio queues a sender's messages above its rate itself (a long code sends about one segment a second),
# so by default nothing paces them here. A limit of our own, in segments per second per sending number,
# holds across all workers and never makes a worker wait (alerts/channels/ratelimit.py).
SMS_PER_SECOND_PER_NUMBER = env.float("SMS_PER_SECOND_PER_NUMBER", 0.0, minimum=0)  # 0: no limit
# An SMS still waiting in Twilio's queue this long after it was handed over expires instead of arriving
# late (Twilio's ValidityPeriod, 1-36000 s; 0: Twilio's default, 10 hours).
SMS_VALIDITY_PERIOD_SECONDS = env.int("SMS_VALIDITY_PERIOD_SECONDS", 3600, minimum=0, maximum=36000)
# The answer to an inbound HELP (or INFO): who is sending, and how to stop it. One SMS body at most.
SMS_HELP_TEXT = env.str(
    "SMS_HELP_TEXT",
    "Alerts from our alerting service. Reply ACK to acknowledge the last alert, STOP to receive no more SMS, "
    "START to receive them again.",
).strip()
if not SMS_HELP_TEXT or len(SMS_HELP_TEXT) > 1600:
    raise ImproperlyConfigured("SMS_HELP_TEXT must be 1 to 1600 characters (Twilio's longest message body)")

# --- Webhooks ----------------------------------------------------------------------------------------
# A receiver that does not accept the connection, or answer, within this many seconds is treated as down:
# the delivery is retried (an unanswered POST is sent again with the same delivery id).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)
# Whether a contact's webhook may point at a loopback, private or link-local address (an intranet chat bot,
# a relay beside the service). Off, each POST first resolves the host and refuses such addresses, so that
# whoever may edit contacts cannot make the workers call the internal network (a cloud's metadata service).
# On only where DEBUG is (a laptop's receivers are local); a deployment that wants it says so.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", DEBUG)

# --- Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.url(
    "CELERY_BROKER_URL",
    broker.EMBEDDED_BROKER_URL,
    schemes=("filesystem", "amqp", "amqps", "pyamqp", "redis", "rediss"),
)
EMBEDDED_BROKER_DIR = Path(env.str("EMBEDDED_BROKER_DIR", str(VAR_DIR / "broker"))).resolve()
CELERY_BROKER_TRANSPORT = broker.transport_class(CELERY_BROKER_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = broker.transport_options(CELERY_BROKER_URL, embedded_root=EMBEDDED_BROKER_DIR)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Database connections outlive a task; config/celery.py says why and what closes them instead.
CELERY_DB_REUSE_MAX = sys.maxsize
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The job row is the record of every tracked run; nothing needs Celery's result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = "config.celery:NoResultBackend"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Task events (a message to the broker at each send, receipt, start and end of every task) are for Flower
# and `celery events`; the job rows already record all of it. Off by default, as in Celery: they cost a
# tracked delivery more CPU than its own engine writes. Flower switches workers' events on by itself
# (`enable_events`); CELERY_TASK_EVENTS=true sends them from the start, "task-sent" included.
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_TASK_EVENTS", default=False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
# ETA messages fire within a tenth of a second of their time instead of within a second.
CELERY_WORKER_TIMER_PRECISION = 0.1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

JOB_QUEUES = env.list("JOB_QUEUES", ["default", "sms", "email", "webhook", "maintenance"])
# Prefixed to the queues' names on the broker, so that deployments (or test runs) can share one broker.
JOB_QUEUE_PREFIX = env.str("JOB_QUEUE_PREFIX", "")
JOB_BROKER_QUEUES = {name: f"{JOB_QUEUE_PREFIX}{name}" for name in JOB_QUEUES}
CELERY_TASK_DEFAULT_QUEUE = JOB_BROKER_QUEUES.get("default", "default")
CELERY_TASK_DEFAULT_EXCHANGE = CELERY_TASK_DEFAULT_QUEUE
CELERY_TASK_QUEUES = [Queue(queue, routing_key=queue) for queue in JOB_BROKER_QUEUES.values()]
CELERY_TASK_CREATE_MISSING_QUEUES = False

# --- Job engine --------------------------------------------------------------------------------------
# Jobs due within the horizon are published with an ETA; later ones wait in the database.
JOB_ETA_HORIZON = timedelta(seconds=env.int("JOB_ETA_HORIZON_SECONDS", 300, minimum=1))
JOB_DISPATCH_INTERVAL = timedelta(seconds=env.int("JOB_DISPATCH_INTERVAL_SECONDS", 30, minimum=1))
JOB_SWEEP_INTERVAL = timedelta(seconds=env.int("JOB_SWEEP_INTERVAL_SECONDS", 60, minimum=1))
# A job still unclaimed this long after its ETA is presumed lost by the broker and republished.
JOB_UNCLAIMED_GRACE = timedelta(seconds=env.int("JOB_UNCLAIMED_GRACE_SECONDS", 600, minimum=1))
# A running job that has not renewed its lease for this long is presumed to have lost its worker.
JOB_LEASE = timedelta(seconds=env.int("JOB_LEASE_SECONDS", 600, minimum=1))
JOB_RETRY_DELAY = timedelta(seconds=env.int("JOB_RETRY_DELAY_SECONDS", 3600, minimum=1))
# Retention (scheduler/retention.py): finished jobs, their events and the apps' records of them are
# deleted this many days after their last change; failed ones and those needing attention (unresolved) are
# kept longer, for the post-mortem and a resend.
JOB_RETENTION_DAYS = env.int("JOB_RETENTION_DAYS", 30, minimum=1)
JOB_FAILED_RETENTION_DAYS = env.int("JOB_FAILED_RETENTION_DAYS", 90, minimum=1)
JOB_PRUNE_INTERVAL = timedelta(seconds=env.int("JOB_PRUNE_INTERVAL_SECONDS", 3600, minimum=60))
# Rows per delete transaction: small enough that nothing waits behind one.
JOB_PRUNE_BATCH_SIZE = env.int("JOB_PRUNE_BATCH_SIZE", 1000, minimum=1, maximum=10_000)
# Each app prunes its own rows: the engine calls these by name and never imports the apps.
JOB_RETENTION_PRUNERS = ["alerts.retention.prune"]

# --- Alerts' planner (alerts/planner.py) ----------------------------------------------------------------
# How often beat runs the planner, how far ahead it turns due times into jobs, and how late a due time may
# still be delivered after the planner was down (older ones are skipped with a warning, not sent hours late).
ALERT_PLAN_INTERVAL = timedelta(seconds=env.int("ALERT_PLAN_INTERVAL_SECONDS", 10, minimum=1))
ALERT_PLAN_AHEAD = timedelta(seconds=env.int("ALERT_PLAN_AHEAD_SECONDS", 120, minimum=0))
ALERT_CATCH_UP = timedelta(seconds=env.int("ALERT_CATCH_UP_SECONDS", 3600, minimum=1))
# An occurrence's recipients on a channel are shared among delivery jobs of at most about this many each
# (alerts/fanout.py): jobs run side by side, where one job would send to 10,000 people one after another.
ALERT_RECIPIENTS_PER_JOB = env.int("ALERT_RECIPIENTS_PER_JOB", 25, minimum=1)

CELERY_BEAT_SCHEDULE = {
    "alerts.plan-due": {
        "task": "alerts.plan_due",
        "schedule": ALERT_PLAN_INTERVAL.total_seconds(),
        "options": {"queue": JOB_BROKER_QUEUES.get("maintenance"), "expires": ALERT_PLAN_INTERVAL.total_seconds()},
    },
    "scheduler.dispatch-due-jobs": {
        "task": "scheduler.dispatch_due_jobs",
        "schedule": JOB_DISPATCH_INTERVAL.total_seconds(),
        "options": {
            "queue": JOB_BROKER_QUEUES.get("maintenance"),
            "expires": JOB_DISPATCH_INTERVAL.total_seconds(),
        },
    },
    "scheduler.sweep-jobs": {
        "task": "scheduler.sweep_jobs",
        "schedule": JOB_SWEEP_INTERVAL.total_seconds(),
        "options": {"queue": JOB_BROKER_QUEUES.get("maintenance"), "expires": JOB_SWEEP_INTERVAL.total_seconds()},
    },
    "scheduler.prune-jobs": {
        "task": "scheduler.prune_jobs",
        "schedule": JOB_PRUNE_INTERVAL.total_seconds(),
        "options": {"queue": JOB_BROKER_QUEUES.get("maintenance"), "expires": JOB_PRUNE_INTERVAL.total_seconds()},
    },
}
if broker.is_embedded(CELERY_BROKER_URL):
    CELERY_BEAT_SCHEDULE["config.embedded-broker-housekeeping"] = {
        "task": "config.embedded_broker_housekeeping",
        "schedule": JOB_SWEEP_INTERVAL.total_seconds(),
        "options": {"queue": JOB_BROKER_QUEUES.get("maintenance"), "expires": JOB_SWEEP_INTERVAL.total_seconds()},
    }
