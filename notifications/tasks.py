from celery import shared_task

from .services import notification_deliver
from .transports import TransportError


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def deliver_notification(self, notification_id: int):
    """Thin task: deliver by id; temporary failures retry with exponential backoff."""
    try:
        return notification_deliver(notification_id=notification_id,
                                    final_attempt=self.request.retries >= self.max_retries)
    except TransportError as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 300)) from None
