"""Delivery channels: small classes with one ``send`` each.

A transport raises TransportError; ``permanent=True`` means retrying cannot help
(the address is refused, the receiver said 4xx), so the notification fails at once.
"""
import hashlib
import hmac
import json
import os
import smtplib
import time

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
import httpx


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def notification_message_id(notification) -> str:
    """The notification's Message-ID (RFC 5322 section 3.6.4): the same on every delivery attempt.

    A re-sent e-mail (a worker died after the SMTP DATA, before recording it) carries the same
    id, so receivers and mail stores can drop the repeat.
    """
    stamp = notification.created_at.strftime("%Y%m%d%H%M%S") if notification.created_at else "0"
    return f"<notification.{notification.pk}.{stamp}@{settings.NOTIFICATION_MESSAGE_ID_DOMAIN}>"


class Transport:
    def send(self, notification) -> None:
        raise NotImplementedError


class EmailTransport(Transport):
    def send(self, notification):
        address = notification.target or notification.recipient  # target: the recipient's override address
        if "@" not in address:
            raise TransportError(f"'{address}' is not an e-mail address.", permanent=True)
        message = EmailMessage(
            subject=notification.subject or "Notification",
            body=notification.message,
            to=[address],
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
            headers={"X-Notification-Id": str(notification.pk), "Message-ID": notification_message_id(notification)},
        )
        try:
            message.send(fail_silently=False)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise TransportError(f"The mail server refused the message: {exc}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise TransportError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"Could not reach the mail server: {exc}") from None


class WebhookTransport(Transport):
    """POST the notification as JSON, signed with HMAC-SHA256 over timestamp and body.

    Receivers verify ``X-MCP-Signature: sha256=HMAC(secret, timestamp + "." + body)`` and
    may de-duplicate on ``X-Notification-Id``: a worker that dies after the receiver got
    the request but before it recorded the answer causes one more delivery attempt.
    """

    def __init__(self):
        self._client = None
        self._client_pid = None

    @property
    def client(self) -> httpx.Client:
        # One pooled client per process, made after fork (Celery's prefork children each get their own).
        if self._client is None or self._client_pid != os.getpid():
            self._client = httpx.Client(timeout=10, follow_redirects=False, trust_env=False)
            self._client_pid = os.getpid()
        return self._client

    def send(self, notification):
        if not notification.target:
            raise TransportError("This webhook notification has no URL.", permanent=True)
        body = json.dumps({
            "id": notification.pk, "recipient": notification.recipient,
            "subject": notification.subject, "message": notification.message,
        }).encode()
        timestamp = str(int(time.time()))
        signature = hmac.new(settings.MCP_WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body,
                             hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-MCP-Timestamp": timestamp,
                   "X-MCP-Signature": f"sha256={signature}", "X-Notification-Id": str(notification.pk)}
        try:
            response = self.client.post(notification.target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"Could not reach the webhook: {type(exc).__name__}") from None
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code not in (408, 429)
            raise TransportError(f"The webhook answered {response.status_code}.", permanent=permanent)


TRANSPORTS = {"email": EmailTransport(), "webhook": WebhookTransport()}
