"""Settings for the test suite: the project's own, plus a small app of test tasks."""

import os

# A key for tests only; production refuses to start without a real one when DEBUG is off.
os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")

from config.settings import *  # noqa: E402, F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The tests' webhook receivers listen on 127.0.0.1; the refusal of private addresses is tested by turning it off.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
# Each run of the suite has its own database and broker queues, so runs side by side do not collide.
TEST_RUN_ID = os.environ.get("TEST_RUN_ID", "local")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_alerting_{TEST_RUN_ID}"}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{TEST_RUN_ID}.sqlite3")}  # noqa: F405
# Worker threads come and go with each test; a connection kept open would outlive the test database.
# A worker process started by a test may ask for connections that last (TEST_CONN_MAX_AGE).
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("TEST_CONN_MAX_AGE", "0"))  # noqa: F405
