"""Figure 2, timing accuracy: lateness of alerts scheduled at known times, 50 per second for a minute.

Each alert is a one-off alert whose ``send_at`` is ``T0 + i / rate``; its message carries that time, so
the time is read back from what the fake Twilio server received. The occurrences are enqueued through
``alerts.planner.occurrence_enqueue`` (a job row, published after commit with the ETA since it is due
within the horizon) before ``T0``, so that nothing but the deliveries themselves load the machine while
they are due. Lateness = the fake's ``time.time()`` on receipt - the scheduled time; negative is early.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from bench import data
from bench.progress import Progress, note, show, verdict
from bench.stats import scaled, summary

TITLE = "Timing accuracy"
SCHEDULED = re.compile(r"Timing test due at (\d+\.\d+)")


def run(ctx) -> dict[str, object]:
    scale = ctx.scale
    per_second, seconds = scale["eta_rate"], scale["eta_seconds"]
    count = per_second * seconds
    # Enough lead for every occurrence to be enqueued before the first is due, at the enqueue rate the
    # throughput figure measured (one process; the enqueue here uses two).
    enqueue_rate = ctx.shared.get("enqueue_per_s") or 40.0
    lead = 5 + 1.2 * count / enqueue_rate + count / 5000
    first = datetime.now(UTC) + timedelta(seconds=lead)
    due = [first + timedelta(seconds=i / per_second) for i in range(count)]
    ids = data.alerts(
        count,
        name=lambda i: f"bench timing {i}",
        # A literal time in the template: the rendered SMS carries it to the fake server.
        message=lambda i: f"Timing test due at {due[i].timestamp():.6f} for {{{{ contact.name }}}}",
        contact_ids=ctx.contact_ids,
        send_at=lambda i: due[i],
        label="create alerts",
    )
    offset = ctx.stack.fake_count()
    data.run_parallel(data.enqueue_occurrences, ids, label="enqueue occurrences", processes=2, chunk=50)
    overran = sum(1 for moment in due if moment.timestamp() < time.time())
    if overran:
        note(f"  warning: {overran} alerts were still being enqueued at their time; their lateness counts")
    last = due[-1].timestamp()
    deadline = last + 60 + count / 20
    with Progress(f"deliveries ({seconds}s at {per_second}/s)", count) as bar:
        while True:
            received = ctx.stack.fake_count() - offset
            bar.update(min(received, count))
            if received >= count or time.time() > deadline:
                break
            time.sleep(0.25)
    time.sleep(1)  # a duplicate would come now
    lateness = []
    seen: dict[str, int] = {}
    for message in ctx.stack.fake_messages(offset):
        match = SCHEDULED.search(message["body"])
        if match:
            seen[match.group(1)] = seen.get(match.group(1), 0) + 1
            lateness.append(message["received_at"] - float(match.group(1)))
    stats = summary(lateness)
    claims = _claim_lateness(ids)
    missing = count - len(seen)
    if missing:
        note(f"  warning: {missing} of {count} alerts were not received by {deadline - last:.0f}s after the last")
    return {
        "eta_p50_ms": scaled(stats["p50"], 1000),
        "eta_p99_ms": scaled(stats["p99"], 1000),
        "eta_early": sum(1 for value in lateness if value < 0),
        "eta_max_ms": scaled(stats["max"], 1000),
        "eta_min_ms": scaled(stats["min"], 1000),
        "eta_alerts": count,
        "eta_missing": missing,
        "eta_duplicates": sum(n - 1 for n in seen.values()),
        "eta_enqueued_late": overran,
        "eta_claim_p50_ms": scaled(claims["p50"], 1000),
        "eta_claim_p99_ms": scaled(claims["p99"], 1000),
    }


def _claim_lateness(alert_ids: list[int]) -> dict[str, float | int | None]:
    """How late the jobs were claimed (``started_at - eta``): the worker's share of the lateness."""
    from django.contrib.contenttypes.models import ContentType

    from alerts.models import Alert
    from scheduler.models import Job

    jobs = Job.objects.filter(
        target_type=ContentType.objects.get_for_model(Alert),
        target_id__in=[str(pk) for pk in alert_ids],
        started_at__isnull=False,
    ).values_list("eta", "started_at")
    return summary([(started - eta).total_seconds() for eta, started in jobs])


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    p50, p99, early = keys.get("eta_p50_ms"), keys.get("eta_p99_ms"), keys.get("eta_early")
    return [
        (f"2 timing: lateness p50 ({keys.get('eta_alerts')} alerts)", show(p50, " ms"), "<= 50 ms",
         verdict(p50, lambda v: v <= 50)),
        ("  lateness p99", show(p99, " ms"), "<= 250 ms", verdict(p99, lambda v: v <= 250)),
        ("  lateness max", show(keys.get("eta_max_ms"), " ms"), "", ""),
        ("  of which claim (started - due) p50 / p99",
         f"{show(keys.get('eta_claim_p50_ms'))} / {show(keys.get('eta_claim_p99_ms'), ' ms')}", "", ""),
        ("  fired early", show(early), "0", verdict(early, lambda v: v == 0)),
        ("  not received", show(keys.get("eta_missing")), "0", verdict(keys.get("eta_missing"), lambda v: v == 0)),
    ]  # fmt: skip
