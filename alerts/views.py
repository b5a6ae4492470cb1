"""Public endpoints: the acknowledgement link, and Twilio's webhooks (signed by Twilio)."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from twilio.request_validator import RequestValidator

from alerts import channel_health, services
from alerts.delivery import ACK_SALT
from alerts.models import Alert, AlertState, Occurrence
from alerts.selectors import contact_by_phone
from alerts.validators import normalize_phone

logger = logging.getLogger(__name__)

ACK_LINK_MAX_AGE = 60 * 60 * 24 * 30
ACK_WORDS = {"ACK", "OK", "ACKNOWLEDGE"}
# Twilio's default opt-out, opt-in and help keywords: a message that is exactly one of them, in any case.
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
OPT_IN_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO"}


@require_http_methods(["GET", "POST"])
def acknowledge(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the alert and a button; only the POST acknowledges.

    Messaging apps open links to build previews; a GET that acknowledged would let a preview robot
    silence an alert nobody has read.
    """
    try:
        payload = signing.loads(token, salt=ACK_SALT, max_age=ACK_LINK_MAX_AGE)
    except signing.SignatureExpired:
        return render(request, "alerts/acknowledge.html", {"problem": "This link has expired."}, status=410)
    except signing.BadSignature:
        return render(request, "alerts/acknowledge.html", {"problem": "This link is not valid."}, status=404)
    alert = get_object_or_404(Alert, pk=payload["a"])
    # An escalation's link names its occurrence: acknowledging stops that walk, not the alert's next ones.
    occurrence = Occurrence.objects.filter(pk=payload["o"], alert=alert).first() if "o" in payload else None
    done = False
    if request.method == "POST":
        by = f"contact {payload['c']} via link"
        done = services.alert_acknowledge(alert=alert, by=by, occurrence=occurrence)
        alert.refresh_from_db()
        if occurrence is not None:
            occurrence.refresh_from_db()
    if occurrence is not None:
        acknowledged = occurrence.acknowledged_at is not None
    else:
        acknowledged = alert.state == AlertState.ACKNOWLEDGED
    context = {"alert": alert, "occurrence": occurrence, "done": done, "acknowledged": acknowledged}
    return render(request, "alerts/acknowledge.html", context)


def twilio_signature_is_valid(request: HttpRequest) -> bool:
    """Twilio signs each webhook with the account's auth token over the public URL and the form."""
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    return RequestValidator(token).validate(url, request.POST.dict(), signature)


def _twiml(message: str | None = None) -> HttpResponse:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback for a message we sent: queued, sent, delivered, undelivered, failed."""
    if not twilio_signature_is_valid(request):
        logger.warning("refused a status callback with a missing or wrong signature")
        return HttpResponseForbidden("invalid signature")
    provider_id, status = request.POST.get("MessageSid", ""), request.POST.get("MessageStatus", "")
    error_code = request.POST.get("ErrorCode", "")
    changed = services.delivery_status_update(provider_id=provider_id, status=status, error_code=error_code)
    if changed and status in ("failed", "undelivered"):
        channel_health.delivery_refused_after_sending(provider_id=provider_id, code=error_code)
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """An SMS to our number: “ACK” acknowledges the last alert sent to that phone before it; STOP / START
    opt the phone out of SMS and back in; HELP gets ``SMS_HELP_TEXT``.

    Each message is remembered by its SID: a replayed request (the signature has no nonce) changes nothing
    and gets an empty answer, so that it also sends no reply SMS.
    """
    if not twilio_signature_is_valid(request):
        logger.warning("refused an inbound SMS webhook with a missing or wrong signature")
        return HttpResponseForbidden("invalid signature")
    sid = request.POST.get("MessageSid", "").strip()
    if not sid:
        return HttpResponseBadRequest("MessageSid is missing")
    sender, body = request.POST.get("From", ""), request.POST.get("Body", "")
    word = body.strip().upper()
    try:
        phone = normalize_phone(sender)
    except ValidationError:
        phone = ""
    try:
        with transaction.atomic():
            message = services.inbound_sms_record(sid=sid, sender=sender, body=body)
            if word in OPT_OUT_WORDS:
                # Twilio itself confirms and blocks the number; a reply of ours would be refused (21610).
                channel_health.contact_sms_opt_out(phone=phone, source=f"reply {word} ({sid})", at=message.received_at)
                return _twiml()
            if word in OPT_IN_WORDS:
                # Twilio confirms the opt-in itself; a second confirmation would cost a message for nothing.
                channel_health.contact_sms_opt_in(phone=phone)
                return _twiml()
            if word in HELP_WORDS:
                return _twiml(settings.SMS_HELP_TEXT)
            if word not in ACK_WORDS:
                return _twiml("Reply ACK to acknowledge the last alert we sent you.")
            contact = contact_by_phone(phone) if phone else None
            alert = services.alert_acknowledge_by_reply(message=message, contact=contact) if contact else None
    except services.InboundReplay as exc:
        logger.warning("ignored a replayed inbound SMS: %s", exc)
        return _twiml()
    if alert is None:
        return _twiml("We have no alert for this number.")
    return _twiml(f"Acknowledged: {alert.name}. No more reminders for it.")
