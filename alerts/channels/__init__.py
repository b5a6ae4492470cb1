"""Delivery channels: a registry of ``DeliveryChannel`` declarations, one module per channel.

Each channel module declares its ``CHANNEL``: its name, the contact field holding the address, its queue
and its transport (the provider behind the ``base.Transport`` interface, whose ``send`` returns a
``SentMessage`` once the provider accepted the message, or raises ``DeliveryError`` saying whether a
retry can help). Delivery and the delivery tasks ask the registry; adding a channel is one module, its
line below, and its tests.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from alerts.channels import email, sms, webhook
from alerts.channels.base import DeliveryChannel, DeliveryError, Envelope, SentMessage, Transport
from alerts.channels.email import DjangoEmail, email_channel
from alerts.channels.ratelimit import reserve_send_slot
from alerts.channels.sms import LocalSmsSink, TwilioSms, sms_channel, twilio_configured
from alerts.channels.webhook import Webhook, webhook_channel

registry: dict[str, DeliveryChannel] = {}


def register(channel: DeliveryChannel) -> DeliveryChannel:
    if channel.name in registry:
        raise ImproperlyConfigured(f"a delivery channel named {channel.name!r} is registered already")
    registry[channel.name] = channel
    return channel


def get(name: str) -> DeliveryChannel:
    try:
        return registry[name]
    except KeyError:
        raise LookupError(f"no delivery channel named {name!r} (registered: {', '.join(registry)})") from None


for _module in (sms, email, webhook):
    register(_module.CHANNEL)

__all__ = [
    "DeliveryChannel",
    "DeliveryError",
    "DjangoEmail",
    "Envelope",
    "LocalSmsSink",
    "SentMessage",
    "Transport",
    "TwilioSms",
    "email_channel",
    "get",
    "register",
    "registry",
    "reserve_send_slot",
    "sms_channel",
    "twilio_configured",
    "webhook_channel",
    "Webhook",
]
