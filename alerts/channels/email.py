"""Email through Django's email framework: SMTP in production, the console when no host is set."""

from __future__ import annotations

import smtplib
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage, make_msgid

from alerts.channels.base import DeliveryChannel, DeliveryError, Envelope, SentMessage, Transport


def email_channel() -> Transport:
    """The email channel; which backend it uses (SMTP, console) is Django's EMAIL_BACKEND."""
    return DjangoEmail()


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def smtp_error(code: int, reply: bytes | str, *, what: str) -> DeliveryError:
    """Map an SMTP reply code: 4xx is "try again later" by the protocol's own definition, 5xx is final."""
    permanent = 500 <= code < 600
    return DeliveryError(f"SMTP server refused the {what}: {code} {_text(reply)}", permanent=permanent, code=code)


class DjangoEmail(Transport):
    """Plain-text email to one recipient; the provider id is the Message-ID we set ourselves."""

    name = "email"

    def __init__(self, *, from_email: str = "") -> None:
        self.from_email = from_email

    def send(self, *, to: str, body: str, subject: str = "", envelope: Envelope | None = None) -> SentMessage:
        from_email = self.from_email or settings.DEFAULT_FROM_EMAIL
        # Our own Message-ID, so the delivery record can name the message. Django would make one too, but
        # with the machine's FQDN (a DNS lookup on first use) and without telling us which.
        domain = parseaddr(from_email)[1].rpartition("@")[2] or "localhost"
        message_id = make_msgid(domain=domain)
        message = EmailMessage(subject, body, from_email, [to], headers={"Message-ID": message_id})
        try:
            sent = message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib raises this whatever the RCPT code was, 451 (greylisting, full mailbox) included.
            code, reply = next(iter(exc.recipients.values()))
            raise smtp_error(code, reply, what=f"recipient {to}") from exc
        except smtplib.SMTPConnectError as exc:
            # A greeting other than 220: a busy or starting server; the next attempt may be welcome.
            raise DeliveryError(
                f"SMTP server refused the connection: {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=False,
                code=exc.smtp_code,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # Sender refused, data refused, authentication failed, ...: by the reply's code.
            raise smtp_error(exc.smtp_code, exc.smtp_error, what="message") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryError(f"SMTP server disconnected: {exc}", permanent=False, code="disconnected") from exc
        except smtplib.SMTPException as exc:
            # What is left is configuration (e.g. STARTTLS or AUTH the server does not offer): a retry
            # meets the same server with the same settings.
            raise DeliveryError(f"SMTP failed: {exc}", permanent=True, code="smtp") from exc
        except OSError as exc:
            # Refused or reset connections, timeouts (socket.timeout is TimeoutError), DNS, TLS handshakes.
            raise DeliveryError(
                f"cannot reach the SMTP server: {exc!r}", permanent=False, code="connection-error"
            ) from exc
        except ValueError as exc:
            # Django refuses an address it cannot encode or a header with a newline (BadHeaderError).
            raise DeliveryError(f"invalid email: {exc}", permanent=True, code="invalid") from exc
        if sent != 1:
            raise DeliveryError(f"the email backend sent nothing to {to!r}", permanent=True, code="not-sent")
        return SentMessage(provider_id=message_id)


CHANNEL = DeliveryChannel(name="email", contact_field="email", queue="email", transport=email_channel)
