"""What /proc says about processes: the tree below a process, its memory, and CPU time by part of the stack."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcInfo:
    ppid: int
    comm: str
    cpu: float  # user + system seconds


def process_table() -> dict[int, ProcInfo]:
    """Every process on the machine, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = ProcInfo(int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / ticks)
    return table


def descendants(table: dict[int, ProcInfo], root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_rss(root: int) -> int:
    """Resident memory (bytes) of ``root`` and all its descendants, from /proc (VmRSS of each)."""
    total = 0
    for pid in descendants(process_table(), root):
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def cpu_by_part(roots: dict[int, str], *, broker: str) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack; subtract two of these to cost a phase.

    ``roots`` names the processes the benchmark started (``"worker"`` for a Celery worker, split into its
    main process, the consumer that receives messages and runs ETA timers, and its pool). The benchmark
    itself is this process and its other children; PostgreSQL and the broker (process name ``broker``)
    are every process of that name on the machine.
    """
    table = process_table()
    totals: dict[str, float] = {}
    started: set[int] = set()

    def add(part: str, seconds: float) -> None:
        totals[part] = totals.get(part, 0.0) + seconds

    for root, name in roots.items():
        tree = descendants(table, root)
        started |= tree
        if name == "worker":
            add("worker consumer", table[root].cpu if root in table else 0.0)
            tree.discard(root)
            name = "worker pool"
        add(name, sum(table[pid].cpu for pid in tree if pid in table))
    add("bench process", sum(table[pid].cpu for pid in descendants(table, os.getpid()) - started if pid in table))
    add("postgresql", sum(info.cpu for info in table.values() if info.comm == "postgres"))
    add("broker", sum(info.cpu for info in table.values() if info.comm == broker))
    totals[MACHINE] = machine_busy()
    return totals


# Not a part: the machine's busy time, every process's and the kernel's, including processes that exited
# between two readings (which the parts above cannot count). The parts' sum should come close to it.
MACHINE = "machine busy"


def machine_busy() -> float:
    """Seconds the machine's CPUs have been busy since boot (all of them added), from /proc/stat."""
    with open("/proc/stat") as handle:
        ticks = [int(value) for value in handle.readline().split()[1:]]
    # user, nice, system, idle, iowait, irq, softirq, steal (guest time is already in user)
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
