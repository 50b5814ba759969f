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


def _target(channel: str, preference: NotificationPreference | None, webhook_url: str) -> str | None:
    """Where this channel would deliver, or None if it cannot be addressed."""
    if channel == Notification.Channel.WEBHOOK:
        return (preference.webhook_url if preference else "") or webhook_url or None
    if channel == Notification.Channel.EMAIL:
        return preference.email_address if preference else ""
    return ""


def preference_apply(*, recipient: str, channel: str | None, default_channel: str, webhook_url: str,
                     now: datetime) -> Route:
    """Decide channel and address for one notification, or why it must be skipped.

    ``channel`` is the caller's explicit choice (None: not chosen). An explicit channel the
    recipient refused is skipped, never re-routed: the caller asked for that channel. Without
    one, the recipient's preferred channel comes first, then ``default_channel``, then any
    other accepted channel that can be addressed. Raises NoWebhookUrl for an explicit webhook
    with no URL from anywhere (a caller error, not the recipient's choice).
    """
    preference = preference_get(recipient=recipient)
    if preference is None:
        candidates = [channel or default_channel]
    elif preference.muted_at(now):
        return Route(channel=channel or preference.preferred_channel or default_channel,
                     skip_reason=_muted_reason(preference))
    elif channel:
        if not preference.accepts(channel):
            return Route(channel=channel, skip_reason=_refused_reason(channel))
        candidates = [channel]
    else:
        ordered = [preference.preferred_channel, default_channel, *CHANNEL_LABELS]
        candidates = [c for c in dict.fromkeys(ordered) if c and preference.accepts(c)]
    for candidate in candidates:
        target = _target(candidate, preference, webhook_url)
        if target is not None:
            return Route(channel=candidate, target=target)
    if channel or preference is None:
        raise NoWebhookUrl("No webhook URL: the tool has none configured and the recipient gave none.")
    if not candidates:
        return Route(channel=default_channel, skip_reason="The recipient has turned off every channel.")
    # Only webhooks are accepted (e-mail always has an address) and nobody gave a URL.
    return Route(channel=candidates[0], skip_reason=(
        "The recipient accepts only webhook notifications, and neither they nor the sender gave a webhook URL."))


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
