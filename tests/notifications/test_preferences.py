"""Recipient preferences: each rule at queue time, and the second look a worker takes before sending."""
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
import pytest

from mcp_tools.exceptions import ServiceUnavailable
from notifications import services
from notifications.models import Notification, NotificationPreference
from notifications.preferences import NoWebhookUrl

HOOK = "https://hooks.example.com/tool"
OWN_HOOK = "https://alice.example.com/hook"


@pytest.fixture
def enqueued(monkeypatch):
    """Record the ids handed to the broker instead of publishing them."""
    calls = []
    monkeypatch.setattr(services, "notification_enqueue",
                        lambda *, notification_id, countdown=None: calls.append(notification_id))
    return calls


@pytest.fixture
def queue(db, enqueued, django_capture_on_commit_callbacks):
    """notification_queue for alice@example.com, with on-commit callbacks run."""
    def call(**kwargs):
        kwargs.setdefault("recipient", "alice@example.com")
        kwargs.setdefault("message", "hi")
        with django_capture_on_commit_callbacks(execute=True):
            return services.notification_queue(**kwargs)
    return call


def prefer(recipient="alice@example.com", **fields):
    return NotificationPreference.objects.create(recipient=recipient, **fields)


def assert_skipped(notification, enqueued, reason_part):
    notification.refresh_from_db()
    assert notification.status == "skipped"
    assert reason_part in notification.skip_reason
    assert notification.attempts == 0 and notification.sent_at is None and notification.next_attempt_at is None
    assert notification.pk not in enqueued


class TestQueueTime:
    def test_without_preferences_nothing_changes(self, queue, enqueued):
        notification = queue()
        assert (notification.status, notification.channel, notification.target) == ("queued", "email", "")
        assert enqueued == [notification.pk]

    def test_muted_is_recorded_as_skipped_and_never_enqueued(self, queue, enqueued):
        prefer(muted=True)
        notification = queue()
        assert_skipped(notification, enqueued, "muted all notifications")
        assert enqueued == []

    def test_muted_until_a_future_moment_skips_with_that_moment(self, queue, enqueued):
        until = timezone.now() + timedelta(hours=2)
        prefer(muted_until=until)
        assert_skipped(queue(), enqueued, f"until {until.isoformat()}")

    def test_a_mute_that_has_ended_no_longer_applies(self, queue, enqueued):
        prefer(muted_until=timezone.now() - timedelta(minutes=1))
        notification = queue()
        assert notification.status == "queued" and enqueued == [notification.pk]

    def test_a_skipped_notification_needs_no_broker(self, queue, enqueued, monkeypatch):
        def broker_down(**kwargs):
            raise ServiceUnavailable("Sending notifications is temporarily unavailable.")
        monkeypatch.setattr(services, "broker_check", broker_down)
        prefer(muted=True)
        assert_skipped(queue(require_broker=True), enqueued, "muted")
        with pytest.raises(ServiceUnavailable):
            queue(recipient="bob@example.com", require_broker=True)

    def test_an_explicit_channel_the_recipient_refuses_is_skipped_not_rerouted(self, queue, enqueued):
        prefer(email_enabled=False, webhook_url=OWN_HOOK)
        notification = queue(channel="email")
        assert_skipped(notification, enqueued, "does not accept e-mail notifications")
        assert notification.channel == "email"

    def test_the_preferred_channel_is_used_when_the_caller_did_not_choose(self, queue, enqueued):
        prefer(preferred_channel="webhook")
        notification = queue(webhook_url=HOOK)
        assert (notification.status, notification.channel, notification.target) == ("queued", "webhook", HOOK)

    def test_an_explicit_channel_beats_the_preferred_one(self, queue):
        prefer(preferred_channel="webhook")
        notification = queue(channel="email", webhook_url=HOOK)
        assert (notification.channel, notification.target) == ("email", "")

    def test_a_refused_default_channel_falls_back_to_one_the_recipient_accepts(self, queue, enqueued):
        prefer(email_enabled=False, webhook_url=OWN_HOOK)
        notification = queue()
        assert (notification.status, notification.channel, notification.target) == ("queued", "webhook", OWN_HOOK)
        assert enqueued == [notification.pk]

    def test_webhook_only_without_any_url_is_skipped_with_the_reason(self, queue, enqueued):
        prefer(email_enabled=False)
        assert_skipped(queue(), enqueued, "(webhook: no URL from the recipient or the sender)")

    def test_a_preferred_webhook_nobody_gave_a_url_for_falls_back_to_email(self, queue):
        prefer(preferred_channel="webhook")
        notification = queue()
        assert (notification.status, notification.channel, notification.target) == ("queued", "email", "")

    def test_a_user_id_goes_by_webhook_rather_than_to_an_address_that_is_not_one(self, queue):
        prefer(recipient="user-9", webhook_url=OWN_HOOK)
        notification = queue(recipient="user-9")
        assert (notification.status, notification.channel, notification.target) == ("queued", "webhook", OWN_HOOK)

    def test_no_accepted_channel_that_can_reach_them_is_skipped_with_each_reason(self, queue, enqueued):
        prefer(recipient="user-9")
        notification = queue(recipient="user-9")
        assert_skipped(notification, enqueued, "'user-9' is not an e-mail address and no address is set; "
                                               "webhook: no URL from the recipient or the sender")

    def test_every_channel_off_is_skipped(self, queue, enqueued):
        prefer(email_enabled=False, webhook_enabled=False)
        assert_skipped(queue(), enqueued, "turned off every channel")

    def test_the_recipients_own_webhook_url_replaces_the_tools(self, queue):
        prefer(webhook_url=OWN_HOOK)
        assert queue(channel="webhook", webhook_url=HOOK).target == OWN_HOOK

    def test_the_email_address_override_is_where_the_email_goes(self, queue):
        prefer(recipient="user-42", email_address="ops@example.com")
        notification = queue(recipient="user-42")
        assert (notification.recipient, notification.channel, notification.target) == \
            ("user-42", "email", "ops@example.com")

    def test_the_recipient_is_matched_without_regard_to_case_or_spaces(self, queue, enqueued):
        prefer(recipient="Alice@Example.COM", muted=True)
        assert_skipped(queue(recipient=" alice@example.com"), enqueued, "muted")

    def test_preferences_of_someone_else_do_not_apply(self, queue):
        prefer(recipient="bob@example.com", muted=True)
        assert queue().status == "queued"

    def test_an_explicit_webhook_nobody_gave_a_url_for_writes_nothing(self, queue, enqueued):
        with pytest.raises(NoWebhookUrl):
            queue(channel="webhook")
        assert not Notification.objects.exists() and enqueued == []


class TestPreferenceRules:
    def test_one_preference_per_recipient_whatever_the_case(self, db):
        prefer(recipient="alice@example.com")
        with pytest.raises(IntegrityError), transaction.atomic():
            prefer(recipient="ALICE@example.com")

    def test_the_preferred_channel_must_be_accepted(self, db):
        preference = NotificationPreference(recipient="a@example.com", preferred_channel="email",
                                            email_enabled=False)
        with pytest.raises(ValidationError, match="preferred channel"):
            preference.full_clean()


class TestDeliveryTime:
    @pytest.fixture
    def transport(self, monkeypatch):
        """A fake e-mail transport that records what it was asked to send."""
        sent = []
        fake = type("Recorder", (), {"send": lambda self, notification: sent.append(notification.pk)})()
        monkeypatch.setitem(services.TRANSPORTS, "email", fake)
        return sent

    def test_muted_after_queueing_is_skipped_not_sent(self, queue, transport):
        notification = queue()
        prefer(muted=True)
        delivery = services.notification_deliver(notification_id=notification.pk)
        assert (delivery.status, delivery.retry_in_s) == ("skipped", None)
        assert transport == []
        notification.refresh_from_db()
        assert (notification.status, notification.attempts) == ("skipped", 0)
        assert "muted all notifications" in notification.skip_reason

    def test_a_channel_turned_off_after_queueing_is_skipped(self, queue, transport):
        notification = queue()
        prefer(email_enabled=False)
        assert services.notification_deliver(notification_id=notification.pk).status == "skipped"
        assert transport == []

    def test_a_retry_after_the_recipient_muted_is_skipped_and_keeps_its_history(self, queue, transport):
        notification = queue()
        Notification.objects.filter(pk=notification.pk).update(attempts=2, last_error="SMTP 451")
        prefer(muted_until=timezone.now() + timedelta(days=1))
        assert services.notification_deliver(notification_id=notification.pk).status == "skipped"
        notification.refresh_from_db()
        assert (notification.status, notification.attempts, notification.last_error) == ("skipped", 2, "SMTP 451")

    def test_a_notification_another_worker_holds_is_left_to_it(self, queue, transport):
        notification = queue()
        Notification.objects.filter(pk=notification.pk).update(
            status="sending", lease_expires_at=timezone.now() + timedelta(seconds=30))
        prefer(muted=True)
        assert services.notification_deliver(notification_id=notification.pk).status == "leased"
        assert Notification.objects.get(pk=notification.pk).status == "sending"

    def test_a_skipped_notification_is_never_delivered_later(self, queue, transport, enqueued):
        prefer(muted=True)
        notification = queue()
        NotificationPreference.objects.all().delete()
        assert services.notification_deliver(notification_id=notification.pk).status == "skipped"
        assert services.notifications_requeue_stale(stale_after_s=0) == 0
        assert transport == [] and Notification.objects.get(pk=notification.pk).status == "skipped"

    def test_without_a_change_it_is_sent(self, queue, transport):
        prefer(email_address="deputy@example.com")
        notification = queue()
        assert services.notification_deliver(notification_id=notification.pk).status == "sent"
        assert transport == [notification.pk]
