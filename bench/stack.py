"""The real stack of one run: its own database and queues, and the processes, all removed at the end.

Everything is named after the benchmark's pid: the database ``bench_alerting_<pid>``, the queues
``bench<pid>-<queue>`` (``JOB_QUEUE_PREFIX``), the workers ``bench<pid>w<n>@<host>``. Every process is
started in a session of its own (so that its whole tree can be killed) and dies with the benchmark
(``PR_SET_PDEATHSIG``) even if the benchmark itself is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import procfs
from bench.broker import BrokerQueues
from bench.progress import note

BASE_DIR = Path(__file__).resolve().parent.parent
BROKERS = {
    "rabbitmq": ("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    # Database 14: the test suite uses 15; the benchmark's keys are removed at the end all the same.
    "redis": ("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    # The embedded default: a folder of the run's own (EMBEDDED_BROKER_DIR), nothing to reach.
    "embedded": ("", "filesystem://"),
}
# The process whose CPU is the broker's (the embedded broker has none: its work is in the clients).
BROKER_PROCESSES = {"rabbitmq": "beam.smp", "redis": "redis-server"}
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
FROM_NUMBER = "+15005550006"
MB = 1024 * 1024


class BenchError(Exception):
    """Something the benchmark needs is missing or broke: the run fails (exit code 1)."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    hostname: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the benchmark dies, however it dies (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


class Stack(BrokerQueues):
    def __init__(self, broker: str) -> None:
        if broker not in BROKERS:
            raise BenchError(f"--broker must be one of {', '.join(BROKERS)}, not {broker!r}")
        variable, default = BROKERS[broker]
        self.broker = broker
        self.broker_url = os.environ.get(variable, default) if variable else default
        self.tag = f"bench{os.getpid()}"
        self.db_name = f"bench_alerting_{os.getpid()}"
        admin = urlsplit(POSTGRES_URL)
        self.db_url = urlunsplit(admin._replace(path=f"/{self.db_name}"))
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.procs: list[Proc] = []
        self.fake_url = ""
        self.keep_tmp = False
        self.qos_fix = False
        self._db_created = False
        self._workers = 0
        self._closed = False

    # --- Setting up -----------------------------------------------------------------------------------

    def check_services(self) -> None:
        missing = [
            f"{name} at {url}"
            for name, url, port in (("PostgreSQL", POSTGRES_URL, 5432), (self.broker, self.broker_url, 0))
            if name != "embedded" and not _reachable(url, port or (5672 if self.broker == "rabbitmq" else 6379))
        ]
        if missing:
            raise BenchError(f"nothing answers: {', '.join(missing)} (start them as .ci/run does)")

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True

    def start_fake_twilio(self) -> None:
        proc = self._spawn("twilio", [sys.executable, "-m", "tests.fakes.twilio_server", "--port", "0"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for line in proc.log_tail().splitlines():
                if line.startswith("fake Twilio listening on "):
                    self.fake_url = line.split()[4]
                    return
            if not proc.alive():
                break
            time.sleep(0.05)
        raise BenchError(f"the fake Twilio server did not start:\n{proc.log_tail()}")

    def environment(self) -> dict[str, str]:
        """What every process of the run gets: the benchmark's database, broker, queues and fake Twilio."""
        from tests.fakes.twilio_server import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

        return {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "false",
            "SECRET_KEY": f"bench-only-{secrets.token_urlsafe(24)}",
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.broker_url,
            "JOB_QUEUE_PREFIX": f"{self.tag}-",
            "SMS_PER_SECOND_PER_NUMBER": "0",
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE_URL": self.fake_url,
            "EMAIL_HOST": "",
            "VAR_DIR": str(self.tmp / "var"),
            "EMBEDDED_BROKER_DIR": str(self.tmp / "broker"),
            "LOG_LEVEL": "WARNING",
            # The job pages are measured with django.test.Client, whose host is "testserver".
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        }

    def setup_django(self) -> None:
        """Point this process at the run's stack, then set Django up and migrate the database."""
        os.environ.update(self.environment())
        import django

        django.setup()
        from django.core.management import call_command

        import bench.bare  # noqa: F401  (bench.noop, for publishing)
        import bench.plain  # noqa: F401  (bench.plain_sms)

        call_command("migrate", verbosity=0, interactive=False)

    def _spawn(self, name: str, argv: list[str], *, hostname: str = "", env: dict[str, str] | None = None) -> Proc:
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        proc = Proc(name, popen, log_path, hostname)
        self.procs.append(proc)
        return proc

    @property
    def queues(self) -> dict[str, str]:
        from django.conf import settings

        return dict(settings.JOB_BROKER_QUEUES)

    def start_worker(self, *, concurrency: int, qos_fix: bool | None = None) -> Proc:
        """A real ``celery worker`` (prefork) on every queue of the run; returns once it answers a ping.

        ``qos_fix``: with the consumer step of ``bench.celery_app`` (default: ``--qos-fix``).
        """
        self._workers += 1
        hostname = f"{self.tag}w{self._workers}@{socket.gethostname()}"
        argv = [
            sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "--pool=prefork",
            f"--concurrency={concurrency}", "--without-mingle", "--without-gossip", "--loglevel=WARNING",
            f"--hostname={hostname}", f"--queues={','.join(self.queues.values())}",
        ]  # fmt: skip
        fix = self.qos_fix if qos_fix is None else qos_fix
        proc = self._spawn(f"worker{self._workers}", argv, hostname=hostname,
                           env={"BENCH_QOS_BEFORE_POLL": "1" if fix else "0"})  # fmt: skip
        self.wait_ping(proc)
        return proc

    def start_shipped_workers(self) -> list[Proc]:
        """The workers `make run` and docker-compose ship (``runstack.worker_commands``), on this run's stack.

        Only the app (``bench.celery_app``: the project's, with the baselines' tasks), the host names, the
        log level and the state folder differ; mingle and gossip are off as for every benchmark worker.
        """
        from config.management.commands.runstack import worker_commands

        procs = []
        for name, argv in worker_commands(
            queues=self.queues, state_dir=self.tmp, app="bench.celery_app", loglevel="WARNING"
        ).items():
            self._workers += 1
            hostname = f"{self.tag}w{self._workers}@{socket.gethostname()}"
            argv = [arg for arg in argv if not arg.startswith("--hostname=")]
            argv += [f"--hostname={hostname}", "--without-mingle", "--without-gossip"]
            procs.append(self._spawn(f"{name}{self._workers}", argv, hostname=hostname))
        for proc in procs:
            self.wait_ping(proc)
        return procs

    def wait_ping(self, proc: Proc, timeout: float = 60) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                break
            if app.control.ping(destination=[proc.hostname], timeout=0.5):
                return
        raise BenchError(f"worker {proc.hostname} did not answer a ping within {timeout}s:\n{proc.log_tail()}")

    def start_manage(self, name: str, *args: str) -> Proc:
        """``manage.py <args>`` against the run's stack, in the background."""
        return self._spawn(name, [sys.executable, "manage.py", *args])

    def start_beat(self) -> Proc:
        # Beat publishes the dispatcher's, the sweep's and the planner's ticks.
        argv = [sys.executable, "-m", "celery", "-A", "bench.celery_app", "beat", "--loglevel=WARNING",
                f"--schedule={self.tmp / 'beat-schedule'}"]  # fmt: skip
        proc = self._spawn("beat", argv)
        time.sleep(0.5)
        if not proc.alive():
            raise BenchError(f"celery beat stopped at once:\n{proc.log_tail()}")
        return proc

    def stop(self, proc: Proc, *, graceful: bool = True, timeout: float = 30) -> None:
        """Warm shutdown (SIGTERM to the main process) if ``graceful``, then SIGKILL to its whole group."""
        if graceful and proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            note(f"warning: {proc.name} (pid {proc.pid}) did not exit after SIGKILL")

    # --- Measuring ------------------------------------------------------------------------------------

    def rss(self, proc: Proc) -> int:
        return procfs.tree_rss(proc.pid)

    def settled_rss(self, proc: Proc, *, seconds: float = 3.0) -> int:
        """The worker's RSS once it stopped moving: the last of samples taken over ``seconds``."""
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(self.rss(proc))
            time.sleep(0.25)
        return samples[-1]

    def cpu_times(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the stack (see ``procfs.cpu_by_part``)."""
        roots = {proc.pid: ("worker" if proc.hostname else proc.name) for proc in self.procs}
        return procfs.cpu_by_part(roots, broker=BROKER_PROCESSES.get(self.broker, ""))

    def db_activity(self) -> dict[str, int]:
        """The run database's own counters (pg_stat_database): transactions and rows written so far.

        Unlike CPU, these count only this run's database, whatever else the machine runs. In autocommit
        every statement outside a transaction is a transaction of its own, so ``transactions`` is close to
        the round trips that commit. A backend's counts arrive up to ten seconds late (``STATS_SETTLE`` in
        ``bench/throughput.py``).
        """
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted"
                " FROM pg_stat_database WHERE datname = %s",
                [self.db_name],
            ).fetchone()
        return {"transactions": int(row[0]), "rows_written": int(row[1])}

    def fake(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.fake_url}{path}", timeout=30) as response:
            return json.load(response)

    def set_provider_latency(self, ms: float) -> None:
        """How late the fake Twilio answers each message from now on."""
        request = urllib.request.Request(f"{self.fake_url}/_fake/latency", data=f"ms={ms}".encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def fake_count(self) -> int:
        return int(self.fake("/_fake/count")["count"])

    def fake_messages(self, after: int = 0) -> list[dict]:
        return self.fake(f"/_fake/messages?after={after}")["messages"]

    # --- Cleaning up ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process, delete the queues, drop the database, remove the temporary folder."""
        if self._closed:
            return
        self._closed = True
        for proc in reversed(self.procs):
            self.stop(proc, graceful=False)
        for step in (self._delete_queues, self._drop_database):
            try:
                step()
            except Exception as exc:
                note(f"clean-up: {step.__name__[1:].replace('_', ' ')} failed: {exc.__class__.__name__}: {exc}")
        if self.keep_tmp:
            note(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        self._db_created = False
