"""Run the web server, the Celery workers and celery beat together in the foreground.

Each runs in its own process group, so that Ctrl-C (or SIGTERM) reaches this command first and it can
stop them in order: SIGTERM to each leader only (a Celery worker's pool processes die at once when they
get SIGTERM themselves, while the main process waits for running jobs), then SIGKILL to each whole group.
If any of them exits, the others are stopped too: a half-running stack is worse than none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from config import broker


class Command(BaseCommand):
    help = "Run web server, worker and beat together; Ctrl-C stops all of them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="Address of the web server.")
        parser.add_argument(
            "--concurrency", type=int, default=None, help="Processes of the CPU worker (default: one per core)."
        )
        parser.add_argument(
            "--io-threads", type=int, default=IO_THREADS, help="Threads of each sms/email/webhook worker (default 16)."
        )
        parser.add_argument(
            "--io-processes", type=int, default=None,
            help=f"sms/email/webhook workers (default: one per core, at most {IO_PROCESSES_MAX}).",
        )  # fmt: skip
        parser.add_argument("--stop-wait", type=float, default=30.0, help="Seconds to wait for a warm stop.")

    def handle(
        self, *args, addr: str, concurrency: int | None, io_threads: int, io_processes: int | None, stop_wait: float,
        **options,
    ) -> None:  # fmt: skip
        if broker.is_embedded(settings.CELERY_BROKER_URL):
            broker.reset_control_bindings(settings.EMBEDDED_BROKER_DIR)
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", addr, "--noreload"],
            **worker_commands(
                queues=settings.JOB_BROKER_QUEUES,
                state_dir=settings.VAR_DIR,
                concurrency=concurrency,
                io_threads=io_threads,
                io_processes=io_processes,
            ),
            "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "--pidfile="],
        }
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def request_stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            for name, command in commands.items():
                children[name] = subprocess.Popen(command, start_new_session=True)
                self.stdout.write(f"started {name} (pid {children[name].pid})")
            self.stdout.write(self.style.SUCCESS(f"Serving http://{addr}/ ; Ctrl-C stops everything."))
            while not stopping:
                exited = [name for name, child in children.items() if child.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} exited; stopping the rest.")
                    break
                time.sleep(0.5)
        finally:
            self._stop(children, stop_wait)

    def _stop(self, children: dict[str, subprocess.Popen], stop_wait: float) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + stop_wait
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop within {stop_wait:.0f}s; killing it.")
            # Worker pool processes live in the same group: kill the group even if the leader exited.
            _signal_group(child, signal.SIGKILL)
            child.wait()
        self.stdout.write("All stopped.")


# The queues whose tasks mostly wait on a provider's answer (Twilio: 100-400 ms, SMTP and webhooks: more).
IO_QUEUES = ("sms", "email", "webhook")
# A threads worker runs Python on one core at a time (the GIL), and a tracked delivery costs a few
# milliseconds of it: one threads worker per core, 16 threads each (32 on two cores, as one worker had).
IO_THREADS = 16
IO_PROCESSES_MAX = 4


def worker_commands(
    *,
    queues: dict[str, str],
    state_dir: Path,
    concurrency: int | None = None,
    io_threads: int = IO_THREADS,
    io_processes: int | None = None,
    app: str = "config",
    loglevel: str = "INFO",
) -> dict[str, list[str]]:
    """The workers the service runs, by name: the one definition `make run` and the benchmark share.

    A delivery spends nearly all its time waiting on the provider, so the ``sms``, ``email`` and ``webhook``
    queues go to workers with Celery's threads pool (``io_processes`` of them, ``io_threads`` each), where
    waiting costs a thread, not a process; the CPU-bound queues (``default``, ``maintenance``) to a
    prefork worker with a process per core. ``queues`` maps each
    logical queue to its broker name (``settings.JOB_BROKER_QUEUES``). Each worker keeps its own state
    file (revoked task ids): two workers cannot share one.
    """
    celery = [sys.executable, "-m", "celery", "-A", app, "worker", f"--loglevel={loglevel}"]
    io = [broker_name for name, broker_name in queues.items() if name in IO_QUEUES]
    cpu = [broker_name for name, broker_name in queues.items() if name not in IO_QUEUES]
    commands = {}
    for number in range(1, (io_processes or min(os.cpu_count() or 2, IO_PROCESSES_MAX)) + 1) if io else ():
        name = "worker-io" if number == 1 else f"worker-io-{number}"
        commands[name] = [
            *celery, "--pool=threads", f"--concurrency={io_threads}", f"--queues={','.join(io)}",
            f"--statedb={Path(state_dir) / f'{name}.state'}", f"--hostname={name.removeprefix('worker-')}@%h",
        ]  # fmt: skip
    commands["worker-cpu"] = [
        *celery, "--pool=prefork", f"--concurrency={concurrency or os.cpu_count() or 2}",
        f"--queues={','.join(cpu)}", f"--statedb={Path(state_dir) / 'worker-cpu.state'}", "--hostname=cpu@%h",
    ]  # fmt: skip
    return commands


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass
