"""Per-recipient preferences: the one set of rules every notification goes through.

``preference_apply`` runs when a notification is queued (by any caller) and decides its
channel and address, or why it is skipped. ``preference_veto`` runs again when a worker is
about to deliver, so a recipient who mutes or turns a channel off after queueing is not
sent to. The route chosen at queue time (channel, address) is kept as recorded.
"""
from dataclasses import dataclass
from datetime import datetime

from django.db.models.functions import Lower

from .models import Notification, NotificationPreference

CHANNEL_LABELS = dict(Notification.Channel.choices)


class NoWebhookUrl(ValueError):
    """A webhook was asked for but neither the caller nor the recipient gave a URL."""


@dataclass(frozen=True)
class Route:
    channel: str
    target: str = ""  # webhook URL, or an e-mail address replacing the recipient's
    skip_reason: str = ""  # non-empty: record as skipped, never deliver

    @property
    def skipped(self) -> bool:
        return bool(self.skip_reason)


def preference_get(*, recipient: str) -> NotificationPreference | None:
    """The recipient's preferences, matched case-insensitively (uses the unique index on lower(recipient))."""
    key = recipient.strip().lower()
    return NotificationPreference.objects.alias(key=Lower("recipient")).filter(key=key).first()


def _muted_reason(preference: NotificationPreference) -> str:
    if preference.muted:
        return "The recipient has muted all notifications."
    return f"The recipient has muted notifications until {preference.muted_until.isoformat()}."


def _refused_reason(channel: str) -> str:
    return f"The recipient does not accept {CHANNEL_LABELS.get(channel, channel).lower()} notifications."


def _webhook_target(preference: NotificationPreference | None, webhook_url: str) -> str:
    return (preference.webhook_url if preference else "") or webhook_url


def _explicit(channel: str, preference: NotificationPreference | None, webhook_url: str) -> Route:
    """The channel as asked. A bad e-mail address is left for the transport to report as 'failed'."""
    if channel == Notification.Channel.WEBHOOK:
        target = _webhook_target(preference, webhook_url)
        if not target:
            raise NoWebhookUrl("No webhook URL: the sender gave none and the recipient has none.")
        return Route(channel=channel, target=target)
    if channel == Notification.Channel.EMAIL and preference is not None:
        return Route(channel=channel, target=preference.email_address)
    return Route(channel=channel)


def _unreachable(channel: str, recipient: str, preference: NotificationPreference, webhook_url: str) -> str:
    """Why a channel cannot reach the recipient ('' if it can)."""
    if channel == Notification.Channel.WEBHOOK and not _webhook_target(preference, webhook_url):
        return "webhook: no URL from the recipient or the sender"
    if channel == Notification.Channel.EMAIL and "@" not in (preference.email_address or recipient):
        return f"e-mail: '{recipient}' is not an e-mail address and no address is set"
    return ""


def preference_apply(*, recipient: str, channel: str | None, default_channel: str, webhook_url: str,
                     now: datetime) -> Route:
    """Decide channel and address for one notification, or why it must be skipped.

    ``channel`` is the caller's explicit choice (None: not chosen). An explicit channel the
    recipient refused is skipped, never re-routed: the caller asked for that channel. Without
    one, the first accepted channel that can reach the recipient is used, in this order: the
    recipient's preferred channel, ``default_channel``, the others. Raises NoWebhookUrl for
    an explicit webhook with no URL from anywhere (a caller error, not the recipient's choice).
    """
    preference = preference_get(recipient=recipient)
    if preference is None:
        return _explicit(channel or default_channel, None, webhook_url)
    if preference.muted_at(now):
        return Route(channel=channel or preference.preferred_channel or default_channel,
                     skip_reason=_muted_reason(preference))
    if channel:
        if not preference.accepts(channel):
            return Route(channel=channel, skip_reason=_refused_reason(channel))
        return _explicit(channel, preference, webhook_url)
    ordered = [preference.preferred_channel, default_channel, *CHANNEL_LABELS]
    accepted = [c for c in dict.fromkeys(ordered) if c and preference.accepts(c)]
    if not accepted:
        return Route(channel=default_channel, skip_reason="The recipient has turned off every channel.")
    problems = []
    for candidate in accepted:
        problem = _unreachable(candidate, recipient, preference, webhook_url)
        if not problem:
            return _explicit(candidate, preference, webhook_url)
        problems.append(problem)
    return Route(channel=accepted[0], skip_reason=(
        f"No channel the recipient accepts can reach them ({'; '.join(problems)})."[:300]))


def preference_veto(*, recipient: str, channel: str, now: datetime) -> str:
    """Why a queued notification must not be delivered now ('' if it may): checked again at claim time."""
    preference = preference_get(recipient=recipient)
    if preference is None:
        return ""
    if preference.muted_at(now):
        return _muted_reason(preference)
    if not preference.accepts(channel):
        return _refused_reason(channel)
    return ""
