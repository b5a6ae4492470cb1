"""`make run`'s stack, started for real: web, two workers and beat on SQLite and the embedded broker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.management.commands.runstack import worker_commands
from tests.conftest import wait_until

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.only_on("sqlite")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_stack_serves_delivers_the_demo_and_ctrl_c_leaves_no_process(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(DEBUG="true", VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    env.pop("SECRET_KEY", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=BASE_DIR, check=True, capture_output=True)
    log = tmp_path / "stack.log"
    with open(log, "w") as output:
        stack = subprocess.Popen(
            [*manage, "runstack", f"--addr=127.0.0.1:{port}", "--stop-wait=20"],
            env=env,
            cwd=BASE_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: status_of(f"{base}/healthz") == 200, timeout=60, what="the web server")
        assert status_of(f"{base}/admin/") == 200  # the login page, after a redirect
        ping = [sys.executable, "-m", "celery", "-A", "config", "inspect", "ping", "--timeout=5"]
        # The web server can answer before the workers consume: on a busy machine a worker starts slowly.
        for worker in ("io@", "cpu@"):
            wait_until(
                lambda worker=worker: (
                    worker in subprocess.run(ping, env=env, cwd=BASE_DIR, capture_output=True, text=True).stdout
                ),
                timeout=60,
                what=f"the {worker} worker to answer a ping over the embedded broker",
            )
        wait_until(lambda: "beat: Starting" in log.read_text(), timeout=30, what="beat to start")
        subprocess.run([*manage, "demo"], env=env, cwd=BASE_DIR, check=True, capture_output=True)
        read_sink = (
            "from alerts.models import SmsSinkMessage as M; print(sorted(M.objects.values_list('to', flat=True)))"
        )
        sink = [*manage, "shell", "--verbosity=0", "-c", read_sink]
        # Ada's SMS of the first alert; Grace's waits for the end of the quiet hours the demo gives her.
        wait_until(
            lambda: (
                subprocess.run(sink, env=env, cwd=BASE_DIR, capture_output=True, text=True).stdout.strip()
                == "['+14155550100']"
            ),
            timeout=90,
            interval=1,
            what="the demo's first alert to reach the SMS sink",
        )
        started = dict(re.findall(r"started ([\w-]+) \(pid (\d+)\)", log.read_text()))
        workers = worker_commands(queues={"sms": "sms", "default": "default"}, state_dir=tmp_path)
        assert sorted(started) == sorted(["beat", "web", *workers]) and "worker-io" in workers
        pids = [int(pid) for pid in started.values()]
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)
    assert "All stopped." in log.read_text()
    assert not [pid for pid in pids if alive(pid)]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


def _worker_shape(argv: list[str]) -> tuple[str, str, str]:
    """Pool, queues and (for threads, where it is the point) concurrency of a `celery worker` command."""
    options = dict(arg.removeprefix("--").split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    concurrency = options.get("concurrency", "") if options.get("pool") == "threads" else ""
    return options.get("pool", "prefork"), options["queues"], concurrency


def test_compose_and_supervisord_run_the_workers_make_run_runs():
    """The benchmark measures runstack's workers; docker-compose and supervisord must ship the same."""
    queues = {name: name for name in ("default", "sms", "email", "webhook", "maintenance")}
    # docker-compose.yml and supervisord.conf are written for a host of two cores: two threads workers.
    commands = worker_commands(queues=queues, state_dir=Path("/var/lib/celery"), io_processes=2).values()
    shipped = sorted(_worker_shape(argv) for argv in commands)
    compose = re.findall(r"command: (celery -A config worker .*)", (BASE_DIR / "docker-compose.yml").read_text())
    supervisord = (BASE_DIR / "deploy/supervisord.conf").read_text()
    programs = re.findall(r"exec \S+/celery -A config worker ([^']*)'\n(?:;.*\n)*(?:numprocs=(\d+))?", supervisord)
    supervisor = [command for command, copies in programs for _ in range(int(copies or 1))]
    assert sorted(_worker_shape(command.split()) for command in compose) == shipped
    assert sorted(_worker_shape(command.split()) for command in supervisor) == shipped


def test_one_threads_worker_per_core_each_with_its_own_state_file_and_host_name(monkeypatch):
    from config.management.commands.runstack import IO_PROCESSES_MAX

    queues = {name: name for name in ("default", "sms", "email", "webhook", "maintenance")}
    for cores, expected in ((1, 1), (2, 2), (64, IO_PROCESSES_MAX)):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        commands = worker_commands(queues=queues, state_dir=Path("/state"))
        io = [argv for name, argv in commands.items() if name.startswith("worker-io")]
        assert len(io) == expected
        options = [dict(arg.split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg) for argv in io]
        assert len({o["--statedb"] for o in options}) == len({o["--hostname"] for o in options}) == expected
        assert {o["--pool"] for o in options} == {"threads"}
        assert {o["--queues"] for o in options} == {"sms,email,webhook"}
