"""Run the test suite once per database: PostgreSQL (when reachable) and SQLite.

Django reads its database from the environment before pytest collects anything, so each database gets
a pytest run of its own. A database that cannot be reached is skipped with the reason printed, except
under CI=true, where it fails the run: CI must test everything.

    python -m tests.matrix [pytest arguments]
    TEST_DATABASES=sqlite python -m tests.matrix -k healthz
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.services import CI, DEFAULT_POSTGRES_URL, unreachable_reason

BASE_DIR = Path(__file__).resolve().parent.parent


def _database_urls() -> dict[str, str]:
    return {
        "postgres": os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        "sqlite": f"sqlite:///{BASE_DIR / 'var' / 'test-main.sqlite3'}",
    }


def _counts(junit_xml: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not junit_xml.exists():
        return totals
    for suite in ET.parse(junit_xml).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def main(pytest_args: list[str]) -> int:
    urls = _database_urls()
    wanted = [name.strip() for name in os.environ.get("TEST_DATABASES", "postgres,sqlite").split(",")]
    unknown = set(wanted) - set(urls)
    if unknown:
        print(f"TEST_DATABASES: unknown database(s) {', '.join(sorted(unknown))}; use postgres and/or sqlite")
        return 2
    passed = failed = skipped = 0
    status = 0
    with tempfile.TemporaryDirectory() as reports:
        for name in wanted:
            reason = unreachable_reason(urls[name])
            if reason:
                if CI:
                    print(f"FAILED: the {name} pass cannot run under CI=true: {reason}")
                    failed += 1
                    status = 1
                else:
                    print(f"SKIPPED: the {name} pass, because {reason}")
                continue
            print(f"===== the test suite on {name} =====", flush=True)
            junit_xml = Path(reports) / f"{name}.xml"
            env = {
                "TEST_RUN_ID": str(os.getpid()),
                "JOB_QUEUE_PREFIX": f"test{os.getpid()}-",
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": urls[name],
            }
            code = subprocess.call(
                [sys.executable, "-m", "pytest", f"--junitxml={junit_xml}", *pytest_args], env=env, cwd=BASE_DIR
            )
            counts = _counts(junit_xml)
            failed += counts["failures"] + counts["errors"]
            skipped += counts["skipped"]
            passed += counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
            # Exit code 5 means no test ran: a selection that matched nothing is not a success.
            if code != 0:
                status = code if status == 0 else status
    print(f"all databases: {passed} passed, {failed} failed, {skipped} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
