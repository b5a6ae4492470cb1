"""``--profile DIR``: py-spy on a process tree during a phase, and a text summary of where the time went.

py-spy is not a dependency: install it anywhere (``pip install --target /tmp/proftools py-spy``) and put it
on PATH or set ``PY_SPY``. Its raw output (collapsed stacks, one line per stack with its sample count) is
kept in DIR next to a summary: the functions with the most samples in them, inclusive, and the
project's own frames.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.progress import note

SKIP_IDLE = ("select (selectors.py", "poll (selectors.py", "wait (threading.py", "_recv (billiard", "sleep")


def py_spy() -> str | None:
    return (
        os.environ.get("PY_SPY")
        or shutil.which("py-spy")
        or ("/tmp/proftools/bin/py-spy" if os.path.exists("/tmp/proftools/bin/py-spy") else None)
    )


class Profiler:
    """``with Profiler(dir, "worker", pid):`` records ``pid`` and its children until the block ends."""

    def __init__(self, folder: str | None, name: str, pid: int, *, rate: int = 250) -> None:
        self.folder = Path(folder) if folder else None
        self.name = name
        self.pid = pid
        self.rate = rate
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Profiler:
        binary = py_spy()
        if self.folder is None:
            return self
        if binary is None:
            note("  --profile: py-spy not found (PATH, PY_SPY or /tmp/proftools/bin); not profiling")
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        self.raw = self.folder / f"{self.name}.txt"
        argv = [binary, "record", "--pid", str(self.pid), "--subprocesses", "--format", "raw", "--rate",
                str(self.rate), "--output", str(self.raw), "--nonblocking"]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.raw.exists():
            text = summarize(self.raw)
            (self.folder / f"{self.name}-summary.txt").write_text(text)
            note(f"  profile of {self.name}: {self.raw} (summary beside it)")


def summarize(raw: Path, *, top: int = 40) -> str:
    """Inclusive samples per function, over the stacks that are not idle waits."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if any(frames[-1].startswith(idle) for idle in SKIP_IDLE):
            continue
        samples = int(count)
        total += samples
        leaf[frames[-1]] += samples
        for frame in set(frames[1:]):  # the first frame is the process
            inclusive[frame] += samples
    lines = [f"{total} busy samples in {raw.name}", "", "inclusive (a function and what it calls):"]
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "exclusive (the innermost frame):"]
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in leaf.most_common(top)]
    return "\n".join(lines) + "\n"


class InProcess:
    """``with InProcess(dir, "cancel-all"):`` cProfile of this process for the block, top functions to a file."""

    def __init__(self, folder: str | None, name: str, *, top: int = 45) -> None:
        self.folder = Path(folder) if folder else None
        self.name = name
        self.top = top

    def __enter__(self) -> InProcess:
        if self.folder is not None:
            import cProfile

            self.profile = cProfile.Profile()
            self.profile.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.folder is None:
            return
        import io
        import pstats

        self.profile.disable()
        self.folder.mkdir(parents=True, exist_ok=True)
        out = io.StringIO()
        stats = pstats.Stats(self.profile, stream=out)
        stats.sort_stats("cumulative").print_stats(self.top)
        stats.sort_stats("tottime").print_stats(self.top)
        path = self.folder / f"{self.name}-cprofile.txt"
        path.write_text(out.getvalue())
        note(f"  profile of {self.name}: {path}")
