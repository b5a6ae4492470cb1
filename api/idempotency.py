"""``Idempotency-Key``: a retried request with the same key gets the first answer and changes nothing.

The key's row is inserted in the same transaction as the work it guards. A concurrent retry's insert waits
on the unique index until the first request commits, then finds the row and replays its answer; if the
first request fails (an error answer or an exception), its row rolls back with its work, and the key can
be used again. Answers are kept for ``KEEP`` and then forgotten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from api.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class _Unsuccessful(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=JSONEncoder, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyKey, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        return Response(
            {"detail": f"This {HEADER} was used for another request; use a new key for a new request."},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(record.body, status=record.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(request: Request, produce: Callable[[], Response]) -> Response:
    """``produce()`` once per key and user; without the header, every time."""
    key = request.headers.get(HEADER)
    if key is None:
        return produce()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return Response(
            {"detail": f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters, e.g. a UUID."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    fingerprint = _fingerprint(request)
    now = timezone.now()
    IdempotencyKey.objects.filter(created_at__lt=now - KEEP).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(user=request.user, key=key, fingerprint=fingerprint, created_at=now)
            response = produce()
            if not status.is_success(response.status_code):
                raise _Unsuccessful(response)
            record.status_code = response.status_code
            record.body = json.loads(json.dumps(response.data, cls=JSONEncoder))
            record.save(update_fields=["status_code", "body"])
    except _Unsuccessful as unsuccessful:
        return unsuccessful.response
    except IntegrityError:
        record = IdempotencyKey.objects.filter(user=request.user, key=key).first()
        if record is None:
            raise
        return _replay(record, fingerprint)
    return response
