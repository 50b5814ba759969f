"""Recording, delivering and re-sending notifications.

Postgres is the source of truth; the broker message only says "look at row N".
That is the transactional-outbox pattern, and it decides the order of steps in
``notification_queue``: see its docstring.
"""
from dataclasses import dataclass
from datetime import timedelta
import logging
import random
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mcp_tools.exceptions import InvalidArguments
from mcp_tools.services.broker import broker_check, broker_publish

from .models import Notification
from .preferences import preference_apply, preference_veto
from .transports import TRANSPORTS, TransportError

logger = logging.getLogger("notifications")

# A worker that finds no row (yet) tries again this often before giving up.
MISSING_ROW_RETRY_S = 1
MISSING_ROW_MAX_RETRIES = 5


def notification_enqueue(*, notification_id: int, countdown: float | None = None) -> None:
    """Publish the delivery message (ids only, never model instances). Raises when the broker cannot take it."""
    from .tasks import deliver_notification

    deliver_notification.apply_async((notification_id,), countdown=countdown)


def _enqueue_after_commit(notification_id: int) -> None:
    """Publish once the row is committed. Never raises: a row the broker did not take is the sweeper's."""
    def publish_committed():
        broker_publish(lambda: notification_enqueue(notification_id=notification_id),
                       what=f"notification {notification_id}")
    transaction.on_commit(publish_committed)


_RECIPIENT_MAX = Notification._meta.get_field("recipient").max_length
_SUBJECT_MAX = Notification._meta.get_field("subject").max_length


def _control_characters(value: str) -> bool:
    """Control characters and line or paragraph separators: a line break in a header is an injection."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)


def _invisible_characters(value: str) -> bool:
    """Format, surrogate and unassigned characters: invisible in an address, so "a@x.com" plus U+200B would
    miss the recipient's preferences (muted!) while the mail system drops it and delivers anyway."""
    return any(unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn") for ch in value)


def _domain_deliverable(address: str) -> bool:
    """The address's domain converts to the ASCII form mail is sent to (what SMTP delivery does)."""
    try:
        address.rsplit("@", 1)[-1].encode("idna")
    except UnicodeError:
        return False
    return True


def notification_validate(*, recipient: str, subject: str = "", email_address: str | None = None) -> None:
    """Refuse what cannot be stored or delivered as one message to one recipient; raise InvalidArguments.

    ``recipient``: one e-mail address or user id, at most 254 characters, no control characters
    (a CR/LF would inject mail headers). ``subject``: at most 200 characters, no control characters.
    ``email_address``: for the e-mail channel, the address the message goes to; it must be exactly
    one valid address ("a@x, b@x" is refused: a notification has one recipient).
    """
    if not isinstance(recipient, str) or not recipient.strip():
        raise InvalidArguments("recipient: give one e-mail address or user id.")
    if len(recipient) > _RECIPIENT_MAX:
        raise InvalidArguments(f"recipient: at most {_RECIPIENT_MAX} characters, got {len(recipient)}.")
    if _control_characters(recipient):
        raise InvalidArguments("recipient: line breaks and other control characters are not allowed.")
    if _invisible_characters(recipient):
        raise InvalidArguments("recipient: invisible characters (zero-width spaces, byte-order marks, ...) are "
                               "not allowed; send the plain address or user id.")
    if not isinstance(subject, str) or len(subject) > _SUBJECT_MAX:
        raise InvalidArguments(f"subject: at most {_SUBJECT_MAX} characters.")
    if _control_characters(subject):
        raise InvalidArguments("subject: line breaks and other control characters are not allowed.")
    if email_address is not None:
        try:
            validate_email(email_address)
            if _invisible_characters(email_address) or not _domain_deliverable(email_address):
                raise ValidationError("undeliverable")
        except ValidationError:
            raise InvalidArguments(f"recipient: '{email_address[:80]}' is not one valid e-mail address (a "
                                   "notification goes to exactly one address; send one per recipient).") from None


def notification_queue(*, recipient: str, message: str, channel: str | None = None,
                       default_channel: str = Notification.Channel.EMAIL, subject: str = "", webhook_url: str = "",
                       created_by_tool: str = "", created_by_token: str = "", request_id: str = "",
                       require_broker: bool = False) -> Notification:
    """Record a notification and enqueue its delivery once the transaction commits.

    The recipient's preferences decide first (``preference_apply``): ``channel`` is the
    caller's explicit choice (None lets the recipient's preferred channel, then
    ``default_channel``, decide); ``webhook_url`` is used unless the recipient has their
    own. A notification the recipient opted out of is recorded as 'skipped' with the
    reason and never enqueued (and needs no broker). Raises NoWebhookUrl, writing nothing,
    for a webhook nobody gave a URL for.

    Why "check the broker, insert, publish on commit" and not "publish inside the
    transaction and roll back if publishing fails":

    * Publishing inside the transaction lets a worker receive the message before
      the row is committed (it would find nothing), and a later rollback of the
      caller's transaction (an atomic tool failing at a later step, the audit
      insert failing) would leave a message pointing at a row that never existed.
      It also makes every caller's transaction wait on the network.
    * Publishing on commit never announces a row that does not exist. The one gap
      is the broker dying between our check and the commit: then the row is
      committed as 'queued' without a message. It is not lost: the periodic
      sweeper (``notifications_requeue_stale``) enqueues rows that stayed 'queued'
      too long. The agent's promise ("queued") is kept, only later.
    * With ``require_broker=True`` (the send_notification tool) a broker that is
      down *before* we start is reported at once as ServiceUnavailable, and no
      row is written: the agent gets a clear "temporarily unavailable" and can
      retry. Internal callers (ticket assignment, onboarding) leave it False: the
      row is durable and the sweeper delivers it when the broker is back.

    The worker still treats "no such row" as "not committed yet" and retries a few
    times before giving up, so an unusual ordering never drops a message.

    Raises InvalidArguments, writing nothing, for a recipient or subject that cannot be
    delivered as one message (see ``notification_validate``).
    """
    now = timezone.now()
    notification_validate(recipient=recipient, subject=subject)
    route = preference_apply(recipient=recipient, channel=channel, default_channel=default_channel,
                             webhook_url=webhook_url, now=now)
    if route.channel == Notification.Channel.EMAIL and not route.skipped:
        notification_validate(recipient=recipient, subject=subject, email_address=route.target or recipient)
    fields = dict(recipient=recipient, message=message, channel=route.channel, subject=subject, target=route.target,
                  created_by_tool=created_by_tool, created_by_token=created_by_token, request_id=request_id)
    if route.skipped:
        logger.info("Notification to %s skipped: %s", recipient, route.skip_reason)
        return Notification.objects.create(**fields, status=Notification.Status.SKIPPED,
                                           skip_reason=route.skip_reason)
    if require_broker:
        broker_check(what="Sending notifications")
    with transaction.atomic():
        notification = Notification.objects.create(**fields, next_attempt_at=now)
        _enqueue_after_commit(notification.pk)
    return notification


@dataclass(frozen=True)
class Delivery:
    """What happened to one delivery message: a final status, or when to try again."""

    status: str
    retry_in_s: float | None = None
    reason: str = ""


def _retry_delay(attempts: int) -> float:
    base = settings.NOTIFICATION_RETRY_BASE_S * 2 ** max(attempts - 1, 0)
    delay = min(base, settings.NOTIFICATION_RETRY_MAX_S)
    return delay * random.uniform(1.0, 1.1)  # a little jitter so retries of a burst do not align


def _claimable(now) -> Q:
    return (Q(status=Notification.Status.QUEUED, next_attempt_at__lte=now)
            | Q(status=Notification.Status.QUEUED, next_attempt_at__isnull=True)
            | Q(status=Notification.Status.SENDING, lease_expires_at__lt=now))


def notification_claim(*, notification_id: int) -> Notification | None:
    """Take the notification for sending with one conditional UPDATE, or return None.

    Claimable: 'queued' and due, or 'sending' whose lease ran out (its worker died).
    The lease is written on the row, so every worker judges it the same way.
    """
    now = timezone.now()
    _give_up_if_out_of_attempts(notification_id, now)
    claimed = Notification.objects.filter(_claimable(now), pk=notification_id,
                                          attempts__lt=settings.NOTIFICATION_MAX_ATTEMPTS).update(
        status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1,
        lease_expires_at=now + timedelta(seconds=settings.NOTIFICATION_LEASE_S))
    return Notification.objects.get(pk=notification_id) if claimed else None


def _give_up_if_out_of_attempts(notification_id: int, now) -> None:
    """A claimable notification that used every attempt (its last worker died mid-send) fails instead."""
    Notification.objects.filter(_claimable(now), pk=notification_id,
                                attempts__gte=settings.NOTIFICATION_MAX_ATTEMPTS).update(
        status=Notification.Status.FAILED, lease_expires_at=None,
        last_error=f"Gave up after {settings.NOTIFICATION_MAX_ATTEMPTS} attempts; the last one did not finish "
                   "(its worker stopped). The message may have been delivered.")


def _not_claimed(notification_id: int) -> Delivery:
    row = Notification.objects.filter(pk=notification_id).values("status", "lease_expires_at",
                                                                  "next_attempt_at").first()
    now = timezone.now()
    if row is None:
        return Delivery(status="missing", retry_in_s=MISSING_ROW_RETRY_S, reason="no such notification (yet)")
    if row["status"] == Notification.Status.SENDING:
        # Another worker holds it. Look again when its lease ends: if that worker died, we take over.
        wait = (row["lease_expires_at"] - now).total_seconds() if row["lease_expires_at"] else 0
        return Delivery(status="leased", retry_in_s=max(wait, 0) + 1, reason="another worker is sending it")
    if row["status"] == Notification.Status.QUEUED:
        # Not due yet: the message that scheduled the next attempt (or the sweeper) will handle it.
        return Delivery(status="not_due", reason="a later attempt is scheduled")
    return Delivery(status=row["status"], reason="already done")


def notification_skip_if_vetoed(*, notification_id: int) -> Delivery | None:
    """Skip a claimable notification whose recipient opted out after it was queued.

    One conditional UPDATE, under the same condition a claim uses: if another worker
    claimed it in between, nothing changes here and that worker's claim decides.
    """
    now = timezone.now()
    row = Notification.objects.filter(_claimable(now), pk=notification_id).values("recipient", "channel").first()
    if row is None:
        return None
    reason = preference_veto(recipient=row["recipient"], channel=row["channel"], now=now)
    if not reason:
        return None
    skipped = Notification.objects.filter(_claimable(now), pk=notification_id).update(
        status=Notification.Status.SKIPPED, skip_reason=reason, lease_expires_at=None)
    if not skipped:
        return None
    logger.info("Notification %s skipped at delivery: %s", notification_id, reason)
    return Delivery(status=Notification.Status.SKIPPED, reason=reason)


def notification_deliver(*, notification_id: int) -> Delivery:
    """Check the recipient's preferences again, claim, send, record.

    No database transaction is open while the transport talks to the network.
    """
    vetoed = notification_skip_if_vetoed(notification_id=notification_id)
    if vetoed is not None:
        return vetoed
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return _not_claimed(notification_id)
    mine = Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENDING,
                                       claimed_at=notification.claimed_at)
    try:
        TRANSPORTS[notification.channel].send(notification)
    except TransportError as exc:
        reason = str(exc)[:2000]
        if exc.permanent or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            if not exc.permanent:
                reason = f"Gave up after {notification.attempts} attempts. Last error: {reason}"
            mine.update(status=Notification.Status.FAILED, last_error=reason, lease_expires_at=None)
            logger.warning("Notification %s failed: %s", notification.pk, reason)
            return Delivery(status=Notification.Status.FAILED, reason=reason)
        delay = _retry_delay(notification.attempts)
        mine.update(status=Notification.Status.QUEUED, last_error=reason, lease_expires_at=None,
                    next_attempt_at=timezone.now() + timedelta(seconds=delay))
        logger.info("Notification %s will retry in %.1fs: %s", notification.pk, delay, reason)
        return Delivery(status=Notification.Status.QUEUED, retry_in_s=delay, reason=reason)
    except KeyError:
        reason = f"Unknown channel '{notification.channel}'."
        mine.update(status=Notification.Status.FAILED, last_error=reason, lease_expires_at=None)
        return Delivery(status=Notification.Status.FAILED, reason=reason)
    except Exception as exc:  # a fault no retry can cure (a bad address that slipped through, a bug): say so
        reason = f"Delivery failed unexpectedly ({type(exc).__name__}: {str(exc)[:500]}); not retried."
        logger.exception("Notification %s failed unexpectedly", notification.pk)
        mine.update(status=Notification.Status.FAILED, last_error=reason, lease_expires_at=None)
        return Delivery(status=Notification.Status.FAILED, reason=reason)
    mine.update(status=Notification.Status.SENT, sent_at=timezone.now(), last_error="", lease_expires_at=None)
    return Delivery(status=Notification.Status.SENT)


def notifications_requeue_stale(*, stale_after_s: int | None = None, limit: int = 1000) -> int:
    """Enqueue notifications whose message was lost: 'queued' long past due, or 'sending' with an expired lease.

    Returns how many were enqueued. Stops early (and leaves the rest for the next
    sweep) if the broker cannot be reached.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NOTIFICATION_STALE_S if stale_after_s is None else stale_after_s)
    stale = Notification.objects.filter(
        Q(status=Notification.Status.QUEUED, next_attempt_at__lt=cutoff)
        | Q(status=Notification.Status.QUEUED, next_attempt_at__isnull=True, created_at__lt=cutoff)
        | Q(status=Notification.Status.SENDING, lease_expires_at__lt=now)
    ).order_by("pk").values_list("pk", flat=True)[:limit]
    enqueued = []
    for pk in stale:
        try:
            notification_enqueue(notification_id=pk)
        except Exception as exc:
            logger.warning("Sweeper could not enqueue notification %s (%s); will try next time.", pk, exc)
            break
        enqueued.append(pk)
    # Push the due time forward so the next sweep does not enqueue them again right away.
    Notification.objects.filter(pk__in=enqueued, status=Notification.Status.QUEUED,
                                next_attempt_at__lt=cutoff).update(next_attempt_at=now)
    if enqueued:
        logger.info("Sweeper re-enqueued %d notification(s).", len(enqueued))
    return len(enqueued)


def notifications_resend(*, notification_ids) -> int:
    """Queue failed notifications again (admin action); delivery starts after commit."""
    with transaction.atomic():
        ids = list(Notification.objects.select_for_update().filter(
            pk__in=list(notification_ids), status=Notification.Status.FAILED).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=ids).update(status=Notification.Status.QUEUED, attempts=0,
                                                       next_attempt_at=timezone.now())
        for pk in ids:
            _enqueue_after_commit(pk)
    return len(ids)


def notification_get(*, notification_id: int, token_prefix: str = "") -> Notification | None:
    """A notification the caller may see: one created with the same token (any, for admin calls)."""
    notifications = Notification.objects.filter(pk=notification_id)
    if token_prefix:
        notifications = notifications.filter(created_by_token=token_prefix)
    return notifications.first()


def notification_as_dict(notification: Notification) -> dict:
    return {
        "notification_id": notification.pk,
        "status": notification.status,
        "channel": notification.channel,
        "recipient": notification.recipient,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "skip_reason": notification.skip_reason,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
        "sent_at": notification.sent_at.isoformat() if notification.sent_at else None,
    }
