"""Thin Celery tasks: fetch by id, call a service, decide whether to run again."""
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import MISSING_ROW_MAX_RETRIES, notification_deliver, notifications_requeue_stale

logger = logging.getLogger("notifications")


# Postgres unreachable (restarting, out of connections): try again later with backoff; never drop the message.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=60,
             retry_jitter=True)
def deliver_notification(self, notification_id: int):
    """Deliver one notification. Attempts are counted on the row, so a redelivered message keeps the count.

    Late acks: the message leaves the broker only after this returns, so a worker
    that dies mid-delivery leaves it to be redelivered; the row's claim and lease
    make sure only one worker sends it at a time.
    """
    delivery = notification_deliver(notification_id=notification_id)
    if delivery.retry_in_s is None:
        return delivery.status
    if delivery.status == "missing" and self.request.retries >= MISSING_ROW_MAX_RETRIES:
        logger.error("Notification %s does not exist; dropping its delivery message.", notification_id)
        return "missing"
    raise self.retry(countdown=delivery.retry_in_s)


@shared_task(acks_late=True)
def requeue_stale_notifications():
    """Celery beat: enqueue notifications whose delivery message was lost."""
    return notifications_requeue_stale()
