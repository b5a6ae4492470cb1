"""Delivery channels: one module per provider behind one small interface (``base.Channel``).

Each ``send`` returns a ``SentMessage`` once the provider has accepted the message, or raises
``DeliveryError`` whose ``permanent`` flag says whether a retry can help.
"""

from __future__ import annotations

from alerts.channels.base import Channel, DeliveryError, SentMessage
from alerts.channels.email import DjangoEmail, email_channel
from alerts.channels.ratelimit import reserve_send_slot
from alerts.channels.sms import LocalSmsSink, TwilioSms, sms_channel, twilio_configured

__all__ = [
    "Channel",
    "DeliveryError",
    "DjangoEmail",
    "LocalSmsSink",
    "SentMessage",
    "TwilioSms",
    "email_channel",
    "reserve_send_slot",
    "sms_channel",
    "twilio_configured",
]
