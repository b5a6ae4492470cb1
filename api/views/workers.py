"""/jobs/workers: online workers, queue depths and jobs per minute over the last hour (an SVG drawn here)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from api.workers import MinuteBar, cached_snapshot, jobs_per_minute, worker_activity

CHART_WIDTH = 600
CHART_HEIGHT = 120
POLL_SECONDS = 10


@dataclass(frozen=True)
class Bar:
    x: int
    width: int
    succeeded_y: float
    succeeded_height: float
    failed_y: float
    failed_height: float
    title: str


def chart(bars: list[MinuteBar]) -> dict[str, object]:
    """Stacked bars, succeeded below failed, scaled to the busiest minute."""
    top = max([b.succeeded + b.failed for b in bars] + [1])
    step = CHART_WIDTH // max(len(bars), 1)
    drawn = []
    for index, bar in enumerate(bars):
        succeeded_height = CHART_HEIGHT * bar.succeeded / top
        failed_height = CHART_HEIGHT * bar.failed / top
        drawn.append(
            Bar(
                x=index * step,
                width=max(step - 2, 1),
                succeeded_y=CHART_HEIGHT - succeeded_height,
                succeeded_height=succeeded_height,
                failed_y=CHART_HEIGHT - succeeded_height - failed_height,
                failed_height=failed_height,
                title=f"{bar.minute:%H:%M} UTC: {bar.succeeded} succeeded, {bar.failed} failed",
            )
        )
    return {
        "bars": drawn,
        "top": top,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "succeeded": sum(b.succeeded for b in bars),
        "failed": sum(b.failed for b in bars),
    }


@require_GET
@never_cache
def workers_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
    if not (user.is_active and user.is_staff and user.has_perm("scheduler.view_job")):
        raise PermissionDenied("The workers page is for staff who may view jobs.")
    now = timezone.now()
    snapshot = cached_snapshot()
    activity = worker_activity(now=now)
    online = {worker.name for worker in snapshot.workers} if snapshot else set()
    context = {
        "snapshot": snapshot,
        "snapshot_age": (now - snapshot.taken_at).total_seconds() if snapshot else None,
        "workers": [(worker, activity.get(worker.name)) for worker in snapshot.workers] if snapshot else [],
        "others": [(name, seen) for name, seen in activity.items() if name not in online],
        "queues": sorted((snapshot.queue_depths or {}).items()) if snapshot else [],
        "chart": chart(jobs_per_minute(now=now)),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "api/workers.html", context)
