"""Only ``scheduler/lifecycle/`` writes a job's state: every other module asks it, by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("scheduler", "alerts", "config", "bench")
ALLOWED = Path("scheduler/lifecycle")


def _root_name(node: ast.AST) -> str:
    """The name a chain of attributes and calls starts from: ``Delivery`` in ``Delivery.objects.filter(...)``."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _mentions_job(node: ast.AST) -> bool:
    root = _root_name(node)
    if root[:1].isupper() and root != "Job":  # another model's manager, e.g. Delivery.objects.filter(job=...)
        return False
    return "job" in ast.unparse(node).lower()


def state_writes(source: str) -> list[str]:
    """The places in ``source`` that write a job's ``state``: an ``update(state=...)`` or
    ``bulk_update(..., ["state"])`` on jobs, ``Job(state=...)``, ``<job>.state = ...``, or SQL that sets
    the job table's state."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names = {keyword.arg for keyword in node.keywords}
            if node.func.attr in {"update", "update_or_create", "create"} and "state" in names:
                if _mentions_job(node.func.value):
                    found.append(ast.unparse(node))
            if node.func.attr == "bulk_update" and "state" in ast.unparse(node) and _mentions_job(node):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Job":
            if any(keyword.arg == "state" for keyword in node.keywords):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state" and _mentions_job(target.value):
                    found.append(ast.unparse(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            sql = " ".join(node.value.lower().split())
            if "scheduler_job " in sql and "set state" in sql:
                found.append(node.value)
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "Job.objects.filter(pk=1).update(state='cancelled')",
        "jobs.update(state=State.CANCELLED, modified_at=now)",
        "job.state = State.QUEUED",
        "Job(task_name='x', state='queued')",
        "Job.objects.bulk_update(jobs, ['state'])",
        "cursor.execute('UPDATE scheduler_job SET state = %s')",
    ],
)
def test_the_check_finds_each_way_of_writing_the_state(snippet):
    assert state_writes(snippet)


def test_the_check_leaves_other_models_and_reads_alone():
    assert not state_writes("alert.state = AlertState.PAUSED\nJob.objects.filter(state='queued').count()")
    assert not state_writes("Delivery.objects.filter(job_id=job_id).update(state='pending')")


def test_no_module_but_the_lifecycle_writes_a_jobs_state():
    offenders = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative.is_relative_to(ALLOWED) or "migrations" in relative.parts:
                continue
            if writes := state_writes(path.read_text()):
                offenders[str(relative)] = writes
    assert offenders == {}
