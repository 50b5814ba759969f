"""Notifications delivered by real Celery worker processes to local SMTP and webhook receivers."""
import email
import json
import time

from django.utils import timezone
import pytest

from mcp_tools.services.invocation import tool_invoke
from notifications.models import Notification
from tests.helpers import wait_until

from .support import RedisServer, WebhookReceiver, WorkerProcess, worker_database_url, valid_signature

pytestmark = pytest.mark.worker


def _send(tool, caller, user_id, message="Hello"):
    invocation = tool_invoke(name=tool.name, arguments={"user_id": user_id, "message": message}, caller=caller)
    assert invocation.ok, invocation.message
    assert invocation.result["status"] == "queued"
    return invocation.result["notification_id"]


def _status(pk):
    return Notification.objects.get(pk=pk).status


def _sink_ids(smtp_sink):
    return [email.message_from_string(m["data"])["X-Notification-Id"] for m in list(smtp_sink.messages)]


@pytest.fixture
def receiver():
    made = []

    def make(script=()):
        made.append(WebhookReceiver(script))
        return made[-1]
    yield make
    for r in made:
        r.close()


class TestDeliveryThroughTheWorker:
    def test_an_email_reaches_the_smtp_sink(self, celery_worker, smtp_sink, notify_tool, caller):
        pk = _send(notify_tool(), caller, "alice@example.com", "Your order shipped")
        wait_until(lambda: _status(pk) == "sent", timeout=30)
        notification = Notification.objects.get(pk=pk)
        assert notification.attempts == 1 and notification.sent_at is not None
        [message] = [email.message_from_string(m["data"]) for m in list(smtp_sink.messages)
                     if email.message_from_string(m["data"])["X-Notification-Id"] == str(pk)]
        assert message["To"] == "alice@example.com"
        assert "Your order shipped" in message.get_payload()

    def test_a_webhook_reaches_the_receiver_with_a_valid_signature(self, celery_worker, receiver, notify_tool,
                                                                   caller):
        hook = receiver()
        pk = _send(notify_tool("hook", webhook_url=hook.url), caller, "user-7", "Ping")
        wait_until(lambda: _status(pk) == "sent", timeout=30)
        [hit] = hook.delivered
        assert valid_signature(hit["headers"], hit["body"])
        assert json.loads(hit["body"]) == {"id": pk, "recipient": "user-7", "subject": "", "message": "Ping"}
        assert hit["headers"]["X-Notification-Id"] == str(pk)

    def test_a_tampered_body_does_not_match_the_signature(self, celery_worker, receiver, notify_tool, caller):
        hook = receiver()
        pk = _send(notify_tool("hook", webhook_url=hook.url), caller, "user-7", "Ping")
        wait_until(lambda: _status(pk) == "sent", timeout=30)
        assert not valid_signature(hook.delivered[0]["headers"], hook.delivered[0]["body"] + b" ")


class TestRetries:
    def test_a_temporary_failure_is_retried_with_backoff_then_succeeds(self, celery_worker, receiver,
                                                                        notify_tool, caller):
        hook = receiver([503, 503])
        pk = _send(notify_tool("hook", webhook_url=hook.url), caller, "user-1")
        wait_until(lambda: _status(pk) == "sent", timeout=60)
        notification = Notification.objects.get(pk=pk)
        assert notification.attempts == 3
        assert notification.last_error == ""
        assert len(hook.hits) == 3 and len(hook.delivered) == 1
        first_gap = hook.hits[1]["time"] - hook.hits[0]["time"]
        second_gap = hook.hits[2]["time"] - hook.hits[1]["time"]
        assert first_gap >= 1.0  # NOTIFICATION_RETRY_BASE_S=1 in tests: 1s, then 2s
        assert second_gap >= 2.0

    def test_a_refused_email_fails_at_once_with_the_reason(self, celery_worker, smtp_sink, notify_tool, caller,
                                                          admin_client):
        pk = _send(notify_tool(), caller, "nobody@refused.example.com")
        wait_until(lambda: _status(pk) == "failed", timeout=30)
        time.sleep(2.5)  # longer than the first backoff: a retry would show as a second attempt
        notification = Notification.objects.get(pk=pk)
        assert notification.attempts == 1
        assert "refused" in notification.last_error and "550" in notification.last_error
        page = admin_client.get("/admin/notifications/notification/?status__exact=failed").content.decode()
        assert "mailbox unavailable" in page

    def test_a_webhook_400_fails_at_once_without_retry(self, celery_worker, receiver, notify_tool, caller):
        hook = receiver([400])
        pk = _send(notify_tool("hook", webhook_url=hook.url), caller, "user-2")
        wait_until(lambda: _status(pk) == "failed", timeout=30)
        time.sleep(2.5)
        notification = Notification.objects.get(pk=pk)
        assert (notification.attempts, len(hook.hits)) == (1, 1)
        assert notification.last_error == "The webhook answered 400."


class TestWorkerDeath:
    def test_a_worker_killed_mid_delivery_leads_to_exactly_one_delivery(self, transactional_db, receiver):
        """SIGKILL the worker while the receiver holds its request; a new worker delivers it once."""
        redis = RedisServer().start()
        hook = receiver(["block"])
        env = {"NOTIFICATION_LEASE_S": "3", "TEST_VISIBILITY_TIMEOUT_S": "4"}
        first = second = None
        try:
            first = WorkerProcess(broker_url=redis.url, database_url=worker_database_url(), extra_env=env)
            first.wait_ready()
            notification = Notification.objects.create(recipient="user-9", message="Once only", channel="webhook",
                                                       target=hook.url, next_attempt_at=timezone.now())
            from mcp_project.celery import app
            with app.connection_for_write(redis.url) as conn:
                from notifications.tasks import deliver_notification
                deliver_notification.apply_async((notification.pk,), connection=conn)
            wait_until(lambda: len(hook.hits) == 1, timeout=30)
            assert _status(notification.pk) == "sending"
            first.kill()
            wait_until(lambda: len(hook.aborted) == 1, timeout=10)
            assert _status(notification.pk) == "sending"  # the dead worker never recorded an outcome

            second = WorkerProcess(broker_url=redis.url, database_url=worker_database_url(), extra_env=env)
            second.wait_ready()
            wait_until(lambda: _status(notification.pk) == "sent", timeout=60)
            time.sleep(6)  # more than a lease and a visibility timeout: nothing else may arrive
            notification.refresh_from_db()
            assert len(hook.delivered) == 1
            assert len(hook.hits) == 2  # the aborted attempt and the one delivery
            assert {h["headers"]["X-Notification-Id"] for h in hook.hits} == {str(notification.pk)}
            assert notification.attempts == 2 and notification.status == "sent"
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            redis.cleanup()


class TestBurst:
    def test_a_burst_of_1000_is_recorded_and_delivered_exactly_once(self, celery_worker, smtp_sink, notify_tool,
                                                                     caller):
        tool = notify_tool("burst")
        ids = [_send(tool, caller, f"burst{i}@example.com", f"Message {i}") for i in range(1000)]
        assert len(set(ids)) == 1000
        assert Notification.objects.filter(pk__in=ids).count() == 1000
        wait_until(lambda: Notification.objects.filter(pk__in=ids, status="sent").count() == 1000,
                   timeout=600, interval=1)
        wanted = {str(pk) for pk in ids}
        delivered = [i for i in _sink_ids(smtp_sink) if i in wanted]
        assert len(delivered) == 1000
        assert set(delivered) == wanted  # 1000 messages, 1000 distinct ids: none twice
        assert not Notification.objects.filter(pk__in=ids).exclude(attempts=1).exists()

