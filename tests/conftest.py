"""Fixtures for the real services: brokers, workers in a thread or in a process, and the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from config import broker as broker_config
from config.celery import app
from tests.services import BROKER_URLS, CI

BASE_DIR = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect (not skip) the tests written for the other database's pass."""
    vendor = connection.vendor
    keep, other = [], []
    for item in items:
        marker = item.get_closest_marker("only_on")
        (other if marker and marker.args[0] != vendor else keep).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = keep


def require(service: str, reason: str | None) -> None:
    """Skip (on a laptop) or fail (under CI=true) when a service the test needs is missing."""
    if reason is None:
        return
    message = f"{service} is not available: {reason}"
    if CI:
        pytest.fail(f"{message} (CI=true: nothing may be skipped for a missing service)")
    pytest.skip(message)


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass(frozen=True)
class Broker:
    name: str
    url: str
    embedded_root: Path


def point_app_at(url: str, transport_options: dict[str, Any]) -> None:
    """Make the next publish connect to ``url``.

    Celery has no public call to switch brokers in a running process (its ``close()`` also forgets
    the app), so the two pools it caches are dropped here by hand. kombu keeps the pools themselves in
    registries keyed by broker, so switching back finds the earlier pool still open.
    """
    # The new broker first, then the pools: a pool made meanwhile by another thread (the workers page asks
    # the workers in the background) is then made for the new broker, never cached for the old one.
    app.conf.broker_url = url
    app.conf.broker_transport = broker_config.transport_class(url)
    app.conf.broker_transport_options = transport_options
    app._pool = None
    app.amqp._producer_pool = None
    app.control.mailbox.__dict__.pop("producer_pool", None)  # kombu caches the pool it was first given


@contextmanager
def broker_down() -> Iterator[None]:
    """Point the app at a port with no listener: every connection attempt is really refused."""
    original = app.conf.broker_url, app.conf.broker_transport_options
    point_app_at("redis://127.0.0.1:9/0", {})
    try:
        yield
    finally:
        point_app_at(*original)


def _use_broker(url: str, embedded_root: Path) -> None:
    point_app_at(url, broker_config.transport_options(url, embedded_root=embedded_root))


@pytest.fixture(scope="session", autouse=True)
def private_embedded_broker(tmp_path_factory) -> Path:
    """Tests that publish without asking for a broker publish into a folder of their own."""
    root = tmp_path_factory.mktemp("embedded-default")
    _use_broker(broker_config.EMBEDDED_BROKER_URL, root)
    return root


@pytest.fixture(scope="session", params=list(BROKER_URLS))
def broker(request, tmp_path_factory, private_embedded_broker) -> Iterator[Broker]:
    """Each real broker in turn: RabbitMQ, Redis and the embedded one."""
    from tests.services import unreachable_reason

    name = request.param
    url = BROKER_URLS[name]
    require(f"the {name} broker", unreachable_reason(url))
    root = tmp_path_factory.mktemp(f"embedded-{name}")
    _use_broker(url, root)
    purge_queues()
    yield Broker(name, url, root)
    purge_queues()
    _use_broker(broker_config.EMBEDDED_BROKER_URL, private_embedded_broker)


def purge_queues() -> None:
    with app.connection_for_write() as conn:
        for queue in settings.JOB_BROKER_QUEUES.values():
            conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(queue)


def queue_size(queue: str) -> int:
    with app.connection_for_write() as conn:
        return conn.default_channel.queue_declare(
            queue=settings.JOB_BROKER_QUEUES[queue], durable=True, auto_delete=False
        ).message_count


@pytest.fixture(scope="module")
def worker(broker) -> Iterator[Any]:
    """A real Celery worker consuming from the broker, in a thread of the test process."""
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
        queues=list(settings.JOB_BROKER_QUEUES.values()),
    ) as instance:
        yield instance


def live_database_url() -> str:
    """The URL of the test database, for processes started by a test."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{settings_dict['NAME']}"))


@pytest.fixture
def worker_process(broker, transactional_db, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real ``celery worker`` processes (prefork) against the broker and the test database."""
    started: list[subprocess.Popen] = []

    def start(*, concurrency: int = 1, **extra_env: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": live_database_url(),
            "CELERY_BROKER_URL": broker.url,
            "EMBEDDED_BROKER_DIR": str(broker.embedded_root),
            **extra_env,
        }
        log = open(tmp_path / f"worker-{len(started)}.log", "w")  # noqa: SIM115  (closed by the process)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
                f"--hostname=proc-{uuid.uuid4().hex[:8]}@%h",
                f"--queues={','.join(settings.JOB_BROKER_QUEUES.values())}",
            ],
            env=env,
            cwd=BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        kill_group(process)
    for index in range(len(started)):
        sys.stderr.write((tmp_path / f"worker-{index}.log").read_text()[-3000:])


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)
