"""Claiming, leases, the outbox order, the sweeper and the admin's resend, without a worker."""
from datetime import timedelta

from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
import pytest

from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from notifications import services
from notifications.models import Notification


@pytest.fixture
def enqueued(monkeypatch):
    """Record the ids handed to the broker instead of publishing them."""
    calls = []
    monkeypatch.setattr(services, "notification_enqueue",
                        lambda *, notification_id, countdown=None: calls.append(notification_id))
    return calls


def _make(**fields):
    fields.setdefault("recipient", "a@example.com")
    fields.setdefault("message", "hi")
    fields.setdefault("next_attempt_at", timezone.now())
    return Notification.objects.create(**fields)


class TestClaim:
    def test_only_one_claim_wins(self, db):
        notification = _make()
        assert services.notification_claim(notification_id=notification.pk) is not None
        assert services.notification_claim(notification_id=notification.pk) is None
        notification.refresh_from_db()
        assert (notification.status, notification.attempts) == ("sending", 1)
        assert notification.lease_expires_at > timezone.now()

    def test_an_expired_lease_can_be_taken_over(self, db):
        notification = _make(status="sending", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert services.notification_claim(notification_id=notification.pk) is not None
        assert Notification.objects.get(pk=notification.pk).attempts == 2

    def test_a_live_lease_makes_the_message_come_back_when_it_ends(self, db):
        notification = _make(status="sending", lease_expires_at=timezone.now() + timedelta(seconds=30))
        delivery = services.notification_deliver(notification_id=notification.pk)
        assert delivery.status == "leased"
        assert 29 < delivery.retry_in_s <= 32

    def test_a_missing_row_is_retried_not_dropped(self, db):
        delivery = services.notification_deliver(notification_id=987654321)
        assert delivery.status == "missing" and delivery.retry_in_s == services.MISSING_ROW_RETRY_S

    def test_a_row_not_due_yet_is_left_for_its_scheduled_attempt(self, db):
        notification = _make(next_attempt_at=timezone.now() + timedelta(minutes=5))
        delivery = services.notification_deliver(notification_id=notification.pk)
        assert (delivery.status, delivery.retry_in_s) == ("not_due", None)
        assert Notification.objects.get(pk=notification.pk).attempts == 0

    def test_a_finished_notification_is_never_sent_again(self, db):
        notification = _make(status="sent", attempts=1)
        assert services.notification_deliver(notification_id=notification.pk).status == "sent"
        assert Notification.objects.get(pk=notification.pk).attempts == 1

    def test_backoff_grows_exponentially_and_is_capped(self, settings):
        settings.NOTIFICATION_RETRY_BASE_S, settings.NOTIFICATION_RETRY_MAX_S = 10, 100
        assert 10 <= services._retry_delay(1) <= 11
        assert 40 <= services._retry_delay(3) <= 44
        assert 100 <= services._retry_delay(9) <= 110


class TestOutbox:
    def test_the_message_is_published_only_after_commit(self, db, enqueued, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            with transaction.atomic():
                notification = services.notification_queue(recipient="a@example.com", message="hi")
                assert enqueued == []
        assert enqueued == [notification.pk]

    def test_a_rolled_back_transaction_leaves_no_row_and_no_message(self, db, enqueued,
                                                                    django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError):
                with transaction.atomic():
                    services.notification_queue(recipient="a@example.com", message="hi")
                    raise RuntimeError("a later step failed")
        assert enqueued == [] and not Notification.objects.exists()


class TestSweeper:
    def test_it_requeues_lost_and_abandoned_notifications_only(self, db, enqueued, settings):
        settings.NOTIFICATION_STALE_S = 60
        long_ago = timezone.now() - timedelta(minutes=5)
        lost = _make(next_attempt_at=long_ago)
        abandoned = _make(status="sending", lease_expires_at=timezone.now() - timedelta(seconds=1))
        _make()  # just queued: its message is surely still on the way
        _make(status="sending", lease_expires_at=timezone.now() + timedelta(minutes=1))  # being sent now
        _make(status="failed", next_attempt_at=long_ago)
        _make(status="sent", next_attempt_at=long_ago)
        assert services.notifications_requeue_stale() == 2
        assert sorted(enqueued) == sorted([lost.pk, abandoned.pk])
        lost.refresh_from_db()
        assert lost.next_attempt_at > long_ago  # not picked again by the next sweep
        assert services.notifications_requeue_stale() == 1  # the abandoned one, until a worker claims it

    def test_the_command_reports_what_it_did(self, db, enqueued, capsys):
        _make(next_attempt_at=timezone.now() - timedelta(hours=1))
        call_command("requeue_stale_notifications", "--stale-after", "0")
        assert "Re-enqueued 1 notification(s)." in capsys.readouterr().out


class TestAdmin:
    def test_resend_queues_failed_ones_again(self, admin_client, enqueued, django_capture_on_commit_callbacks):
        failed = _make(status="failed", attempts=6, last_error="SMTP 451")
        sent = _make(status="sent", attempts=1)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post("/admin/notifications/notification/", {
                "action": "resend", "_selected_action": [failed.pk, sent.pk]})
        assert response.status_code == 302
        failed.refresh_from_db()
        assert (failed.status, failed.attempts) == ("queued", 0)
        assert Notification.objects.get(pk=sent.pk).status == "sent"
        assert enqueued == [failed.pk]

    def test_the_list_filters_by_status_channel_and_date(self, admin_client):
        _make(status="failed", last_error="boom-filter-check", channel="webhook")
        page = admin_client.get("/admin/notifications/notification/?status__exact=failed&channel__exact=webhook"
                                f"&created_at__year={timezone.now().year}").content.decode()
        assert "boom-filter-check" in page
        assert "boom-filter-check" not in admin_client.get(
            "/admin/notifications/notification/?status__exact=sent").content.decode()


class TestStatusTool:
    @pytest.fixture
    def tools(self, db):
        from demo_company.seed import seed_tools
        return {t.name: t for t in seed_tools("http://127.0.0.1:9")}

    def test_an_agent_can_follow_its_notification(self, tools, enqueued, settings):
        settings.CELERY_TASK_ALWAYS_EAGER = True  # no broker check in this unit test
        caller = Caller(token=token_issue(name="a", all_tools=True).token)
        sent = tool_invoke(name="send_notification", arguments={"user_id": "x@example.com", "message": "m"},
                           caller=caller)
        status = tool_invoke(name="get_notification_status",
                             arguments={"notification_id": sent.result["notification_id"]}, caller=caller)
        assert status.ok, status.message
        assert status.result["status"] == "queued" and status.result["attempts"] == 0

    def test_another_token_cannot_see_it(self, tools, enqueued, settings):
        settings.CELERY_TASK_ALWAYS_EAGER = True
        owner = Caller(token=token_issue(name="a", all_tools=True).token)
        other = Caller(token=token_issue(name="b", all_tools=True).token)
        sent = tool_invoke(name="send_notification", arguments={"user_id": "x@example.com", "message": "m"},
                           caller=owner)
        status = tool_invoke(name="get_notification_status",
                             arguments={"notification_id": sent.result["notification_id"]}, caller=other)
        assert status.outcome == "tool_error" and "No notification" in status.message


def test_delivery_and_task_messages_survive_a_database_outage():
    """A worker that cannot reach Postgres retries with backoff instead of acknowledging the message away."""
    from django.db import OperationalError

    from mcp_tools.tasks import run_tool_task
    from notifications.tasks import deliver_notification

    for task in (deliver_notification, run_tool_task):
        assert OperationalError in task.autoretry_for and task.max_retries is None
        assert task.acks_late and task.reject_on_worker_lost
