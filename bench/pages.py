"""Figure 4, job pages: server time and SQL queries of /jobs over a million job rows.

The job table is emptied (the other figures' jobs would mix in), then filled with ``page_rows`` jobs in
one ``INSERT ... SELECT generate_series`` per 100,000, with the shape of a service that has run for a
while: 90 days of changes, newest ids newest, 90% succeeded (2% of results unseen), a few failed,
cancelled and aborted, 3% waiting or running; SMS, email and other tasks; about 100 jobs per alert over
10,000 alerts. Then ``VACUUM ANALYZE``, as autovacuum would have done.

Each page is requested with ``django.test.Client`` as a logged-in staff user, in this process, against
the benchmark's database: the time is the server's whole handling (middleware, session, view, queries,
template), without a network. Pages: the first page of ``/jobs/``, a page 90% deep (via the ``after``
cursor the list's "older" link carries), filtered by state (failed), filtered by an alert
(``?target=alerts.alert:<id>``), and the live fragment ``/jobs/rows/`` that the list polls; plus the
header's counters alone (``selectors.job_counters``). The query count is taken on one request of each.
The REST API's job list (``/api/v1/jobs/``, with a bearer token) and a ``/metrics`` scrape are timed the
same way over the same rows.

Then, during a prune: ``manage.py prune_jobs --days 0 --failed-days 0`` in a process of its own deletes
every finished job of the table (97% of it) in its batches, while this process requests the pages above
(but the deep one, whose cursor row goes) in turn until it ends: ``jobs_page_p95_during_prune_ms`` is the
p95 of all those requests. The table ends nearly empty, so this comes last.
"""

from __future__ import annotations

import re
import time

from bench import data
from bench.profile import InProcess
from bench.progress import Progress, note, show, verdict
from bench.stats import scaled, summary

TITLE = "Job pages"
CHUNK = 100_000
ALERTS = 10_000

FILL = """
SELECT
  CASE WHEN g %% 10 < 7 THEN 'alerts.deliver_sms' WHEN g %% 10 < 9 THEN 'alerts.deliver_email'
       ELSE 'reports.nightly_export' END,
  'Alert ' || ((g * 31) %% %(alerts)s + 1) || ' · ' || CASE WHEN g %% 10 < 7 THEN 'sms' ELSE 'email' END
    || ' · 1 recipient',
  jsonb_build_array(g), '{}'::jsonb, CASE WHEN g %% 10 < 7 THEN 'sms' ELSE 'email' END,
  s.state, m.at - interval '1 minute', m.at - interval '1 minute', md5(g::text)::uuid::text, NULL,
  1, 24, interval '1 hour', m.at - interval '2 minutes', m.at,
  CASE WHEN s.state IN ('scheduled', 'queued', 'retrying') THEN NULL ELSE m.at - interval '2 seconds' END,
  CASE WHEN s.state IN ('succeeded', 'failed', 'cancelled', 'aborted') THEN m.at END,
  NULL, CASE WHEN s.state IN ('succeeded', 'failed') THEN interval '1.5 seconds' END, 'celery@worker1', '',
  CASE WHEN s.state = 'succeeded' THEN 1.0 END,
  CASE WHEN s.state = 'failed' THEN '[{"attempt": 1, "type": "alerts.delivery.DeliveryFailed",
    "message": "every sms delivery failed for good", "retryable": false}]'::jsonb ELSE '[]'::jsonb END,
  CASE WHEN s.state = 'succeeded' THEN '{"sent": 1, "skipped": 0, "failed": 0, "unknown": 0}'::jsonb END,
  NOT (s.state IN ('succeeded', 'failed') AND g %% 50 = 0), %(ct)s, ((g * 31) %% %(alerts)s + 1)::text
FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g
CROSS JOIN LATERAL (SELECT now() - (%(total)s - g) * interval '90 days' / %(total)s AS at) AS m
CROSS JOIN LATERAL (SELECT CASE
  WHEN (g * 7919) %% 1000 < 900 THEN 'succeeded' WHEN (g * 7919) %% 1000 < 940 THEN 'failed'
  WHEN (g * 7919) %% 1000 < 960 THEN 'cancelled' WHEN (g * 7919) %% 1000 < 970 THEN 'aborted'
  WHEN (g * 7919) %% 1000 < 985 THEN 'scheduled' WHEN (g * 7919) %% 1000 < 992 THEN 'queued'
  WHEN (g * 7919) %% 1000 < 996 THEN 'retrying' ELSE 'running' END AS state) AS s
"""


def _fill(total: int) -> float:
    """Empty the job tables, insert ``total`` jobs; return the seconds VACUUM ANALYZE took."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from alerts.models import Alert

    ct = ContentType.objects.get_for_model(Alert).pk
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE scheduler_jobevent, alerts_delivery, scheduler_job")
    with Progress("insert job rows", total) as bar:
        for low in range(1, total + 1, CHUNK):
            high = min(low + CHUNK - 1, total)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO scheduler_job ({data.JOB_COLUMNS}) {FILL}",
                    {"low": low, "high": high, "total": total, "alerts": ALERTS, "ct": ct},
                )
            bar.update(high)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE scheduler_job")
    return time.monotonic() - started


def _time(client, url: str, samples: int, **headers: str) -> dict[str, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm-up: templates, caches, the plan cache of the connection
        client.get(url, headers=headers)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    queries = len(captured)  # now: the next request's start clears the connection's query log
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        client.get(url, headers=headers)
        timings.append(time.perf_counter() - started)
    stats = summary(timings)
    return {"p50": scaled(stats["p50"], 1000), "p95": scaled(stats["p95"], 1000), "queries": queries,
            "bytes": len(response.content)}  # fmt: skip


def run(ctx) -> dict[str, object]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from scheduler import selectors
    from scheduler.models import Job

    total, samples = ctx.scale["page_rows"], ctx.scale["page_samples"]
    vacuum_s = _fill(total)
    user = get_user_model().objects.create_user("bench-staff", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    deep = Job.objects.order_by("-modified_at", "-id").only("id", "modified_at")[int(total * 0.9)]
    crowded = Job.objects.filter(state="failed").values_list("target_id", flat=True).first()
    urls = {
        "first page": "/jobs/",
        "deep page (90%)": f"/jobs/?after={selectors.Cursor.of(deep)}",
        "state=failed": "/jobs/?state=failed",
        "one alert": f"/jobs/?target=alerts.alert:{crowded}",
        "live rows (poll)": "/jobs/rows/",
    }
    results: dict[str, dict[str, object]] = {}
    with InProcess(ctx.args.profile, "job-pages"), Progress("requests", len(urls) + 1) as bar:
        for done, (name, url) in enumerate(urls.items(), start=1):
            results[name] = _time(client, url, samples)
            bar.update(done)
        timings = []
        for _ in range(samples + 3):
            started = time.perf_counter()
            selectors.job_counters()
            timings.append(time.perf_counter() - started)
        stats = summary(timings[3:])
        results["counters"] = {"p50": scaled(stats["p50"], 1000), "p95": scaled(stats["p95"], 1000), "queries": 1}
        bar.update(len(urls) + 1)
    worst = max(results.values(), key=lambda r: r["p95"])
    api = _api(client, user, deep=selectors.Cursor.of(deep), crowded=crowded, samples=samples)
    # Last: the prune leaves the table nearly empty.
    during = _during_prune(ctx, client, [url for name, url in urls.items() if not name.startswith("deep")])
    return {
        **api,
        **during,
        "jobs_page_p95_ms": worst["p95"],
        "jobs_page_queries": max(r["queries"] for name, r in results.items() if name in urls),
        "jobs_page_rows": total,
        "jobs_page_vacuum_s": round(vacuum_s, 1),
        "jobs_pages": results,
    }


def _during_prune(ctx, client, urls: list[str]) -> dict[str, object]:
    """Request ``urls`` in turn while a prune of every finished job runs in another process."""
    from scheduler.models import FINAL_STATES, Job

    finished = Job.objects.filter(state__in=sorted(FINAL_STATES)).count()
    proc = ctx.stack.start_manage("prune", "prune_jobs", "--days", "0", "--failed-days", "0")
    note(f"  requesting the pages while {finished} finished jobs are pruned in another process")
    started = time.monotonic()
    timings = []
    while proc.alive():
        began = time.perf_counter()
        client.get(urls[len(timings) % len(urls)])
        timings.append(time.perf_counter() - began)
    prune_s = time.monotonic() - started
    if proc.popen.returncode != 0:
        raise RuntimeError(f"prune_jobs failed:\n{proc.log_tail()}")
    deleted = re.search(r"deleted ([\d,]+) jobs", proc.log_tail())
    stats = summary(timings)
    return {
        "jobs_page_p95_during_prune_ms": scaled(stats["p95"], 1000),
        "jobs_page_p50_during_prune_ms": scaled(stats["p50"], 1000),
        "jobs_page_requests_during_prune": len(timings),
        "jobs_pruned": int(deleted.group(1).replace(",", "")) if deleted else None,
        "jobs_prune_s": round(prune_s, 1),
    }


def _api(client, user, *, deep, crowded, samples: int) -> dict[str, object]:
    """The REST API's job list (bearer token) and a /metrics scrape, over the same million jobs."""
    from django.test import override_settings

    from api.tokens import api_token_create

    _, token = api_token_create(user=user, name="bench")
    bearer = {"Authorization": f"Bearer {token}"}
    urls = {
        "first page": "/api/v1/jobs/",
        "deep page (90%)": f"/api/v1/jobs/?after={deep}",
        "state=failed": "/api/v1/jobs/?state=failed",
        "one alert": f"/api/v1/jobs/?target=alerts.alert:{crowded}",
    }
    api = {name: _time(client, url, samples, **bearer) for name, url in urls.items()}
    with override_settings(METRICS_TOKEN="bench"):
        scrape = _time(client, "/metrics", samples, Authorization="Bearer bench")
    return {
        "api_jobs_p95_ms": max(r["p95"] for r in api.values()),
        "api_jobs_queries": max(r["queries"] for r in api.values()),
        "metrics_scrape_p95_ms": scrape["p95"],
        "metrics_scrape_queries": scrape["queries"],
        "api_jobs": api,
    }


def rows(keys: dict) -> list[tuple[str, str, str, str]]:
    out = []
    pages = keys.get("jobs_pages") or {}
    queries = {r["queries"] for name, r in pages.items() if name != "counters"}
    for number, (name, result) in enumerate(pages.items()):
        title = f"4 job pages ({keys.get('jobs_page_rows')} jobs): {name}" if number == 0 else f"  {name}"
        out.append((f"{title} p50 / p95", f"{result['p50']} / {result['p95']} ms", "p95 <= 50 ms",
                    verdict(result["p95"], lambda v: v <= 50)))  # fmt: skip
    during = keys.get("jobs_page_p95_during_prune_ms")
    out.append((f"  during a prune of {keys.get('jobs_pruned')} finished jobs ({keys.get('jobs_prune_s')} s, "
                f"{keys.get('jobs_page_requests_during_prune')} requests) p50 / p95",
                f"{keys.get('jobs_page_p50_during_prune_ms')} / {during} ms", "p95 <= 100 ms",
                verdict(during, lambda v: v <= 100)))  # fmt: skip
    constant = len(queries) == 1
    out.append(("  SQL queries per page", show(keys.get("jobs_page_queries")), "constant",
                "met" if constant else f"varies: {sorted(queries)}" if queries else "n/a"))  # fmt: skip
    api = keys.get("api_jobs") or {}
    for name, result in api.items():
        out.append((f"  API /api/v1/jobs/: {name} p50 / p95", f"{result['p50']} / {result['p95']} ms", "p95 <= 50 ms",
                    verdict(result["p95"], lambda v: v <= 50)))  # fmt: skip
    api_queries = {r["queries"] for r in api.values()}
    varies = f"varies: {sorted(api_queries)}" if api_queries else "n/a"
    out.append(("  API SQL queries per page", show(keys.get("api_jobs_queries")), "constant",
                "met" if len(api_queries) == 1 else varies))  # fmt: skip
    out.append(("  /metrics scrape p95", show(keys.get("metrics_scrape_p95_ms")), "<= 50 ms",
                verdict(keys.get("metrics_scrape_p95_ms"), lambda v: v <= 50)))  # fmt: skip
    return out
