from datetime import timedelta
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import Notification
from .transports import TRANSPORTS, TransportError

logger = logging.getLogger("notifications")


def notification_queue(*, recipient: str, message: str, channel: str = "email", subject: str = "",
                       target: str = "", created_by_tool: str = "", created_by_token: str = "",
                       request_id: str = "") -> Notification:
    """Record a notification and enqueue its delivery once the transaction commits."""
    from .tasks import deliver_notification

    notification = Notification.objects.create(
        recipient=recipient, message=message, channel=channel, subject=subject, target=target,
        created_by_tool=created_by_tool, created_by_token=created_by_token, request_id=request_id,
    )
    transaction.on_commit(lambda: deliver_notification.delay(notification.pk), robust=True)
    return notification


def notification_claim(*, notification_id: int) -> Notification | None:
    """Take the notification for sending, or None if another worker has it or it is done.

    A row stuck in 'sending' longer than the lease (its worker died) may be taken again.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_LEASE_S)
    claimed = Notification.objects.filter(
        Q(status=Notification.Status.QUEUED) | Q(status=Notification.Status.SENDING, claimed_at__lt=stale),
        pk=notification_id,
    ).update(status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    return Notification.objects.get(pk=notification_id) if claimed else None


def notification_deliver(*, notification_id: int, final_attempt: bool) -> str:
    """Send one notification; return its new status. Temporary failures requeue it unless final."""
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return "skipped"
    try:
        TRANSPORTS[notification.channel].send(notification)
    except TransportError as exc:
        failed = exc.permanent or final_attempt
        status = Notification.Status.FAILED if failed else Notification.Status.QUEUED
        Notification.objects.filter(pk=notification.pk).update(status=status, last_error=str(exc)[:2000])
        logger.warning("Notification %s %s: %s", notification.pk, "failed" if failed else "will retry", exc)
        if not failed:
            raise
        return status
    Notification.objects.filter(pk=notification.pk).update(
        status=Notification.Status.SENT, sent_at=timezone.now(), last_error="")
    return Notification.Status.SENT


def notification_as_dict(notification: Notification) -> dict:
    return {
        "notification_id": notification.pk,
        "status": notification.status,
        "channel": notification.channel,
        "recipient": notification.recipient,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
    }
