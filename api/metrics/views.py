"""/metrics: the Prometheus text format, for a bearer token (METRICS_TOKEN) or an allowed address."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from api.metrics.collector import AlertingCollector


def _allowed_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_ADDRESSES)


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
        return True
    # REMOTE_ADDR, not X-Forwarded-For: a header anyone can send must not open the door.
    return _allowed_address(request.META.get("REMOTE_ADDR", ""))


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        return HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>, or scrape from an address in METRICS_ALLOWED_ADDRESSES.\n",
            status=401 if settings.METRICS_TOKEN else 403,
            content_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"} if settings.METRICS_TOKEN else {},
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AlertingCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
