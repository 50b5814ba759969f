"""Preferences seen from outside: an agent over the REST pair, and a real worker with the SMTP sink."""
import email

from django.db import transaction
import pytest

from notifications import services
from notifications.models import Notification, NotificationPreference
from tests.helpers import wait_until


def _invoke(api, token, name, arguments):
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {token}"},
                        json={"name": name, "arguments": arguments})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    return body["result"]


def _skipped_over_rest(api, demo_token):
    NotificationPreference.objects.create(recipient="grace@example.com", email_enabled=False,
                                          webhook_enabled=False)
    result = _invoke(api, demo_token, "send_notification",
                     {"user_id": "Grace@example.com", "message": "Your order shipped"})
    assert result["status"] == "skipped"
    assert result["skip_reason"] == "The recipient has turned off every channel."
    return result["notification_id"]


def test_an_agent_is_told_skipped_and_why_over_rest(api, demo_token):
    notification_id = _skipped_over_rest(api, demo_token)
    notification = Notification.objects.get(pk=notification_id)
    assert (notification.status, notification.attempts, notification.next_attempt_at) == ("skipped", 0, None)


def test_get_notification_status_reports_skipped_with_its_own_schema_free_tool(api, demo_token):
    """The kind reports 'skipped' (a tool without the seed's output schema, made by an admin)."""
    from mcp_tools.models import Tool
    from mcp_tools.services.tools import tool_save

    tool_save(tool=Tool(name="notification_status_plain", description="Status", kind="get_notification_status",
                        config={}, input_schema={"type": "object",
                                                 "properties": {"notification_id": {"type": "integer"}}}))
    notification_id = _skipped_over_rest(api, demo_token)
    status = _invoke(api, demo_token, "notification_status_plain", {"notification_id": notification_id})
    assert (status["status"], status["skip_reason"], status["attempts"]) == \
        ("skipped", "The recipient has turned off every channel.", 0)


def test_the_seeded_get_notification_status_reports_skipped(api, demo_token):
    notification_id = _skipped_over_rest(api, demo_token)
    status = _invoke(api, demo_token, "get_notification_status", {"notification_id": notification_id})
    assert (status["status"], status["skip_reason"], status["attempts"]) == \
        ("skipped", "The recipient has turned off every channel.", 0)


def _sink_messages(smtp_sink, notification_id):
    messages = [email.message_from_string(m["data"]) for m in list(smtp_sink.messages)]
    return [m for m in messages if m["X-Notification-Id"] == str(notification_id)]


@pytest.mark.worker
def test_muted_after_queueing_the_worker_skips_it_and_nothing_is_mailed(celery_worker, smtp_sink,
                                                                        transactional_db):
    with transaction.atomic():  # the delivery message is published when this commits, after the mute
        notification = services.notification_queue(recipient="late-mute@example.com", message="m")
        assert notification.status == "queued"
        NotificationPreference.objects.create(recipient="late-mute@example.com", muted=True)
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "skipped", timeout=30)
    # A control sent afterwards on the same worker arrives, so the sink is listening and the skip was real.
    control = services.notification_queue(recipient="control@example.com", message="m")
    wait_until(lambda: Notification.objects.get(pk=control.pk).status == "sent", timeout=30)
    assert len(_sink_messages(smtp_sink, control.pk)) == 1
    assert _sink_messages(smtp_sink, notification.pk) == []
    notification.refresh_from_db()
    assert (notification.attempts, notification.skip_reason) == (0, "The recipient has muted all notifications.")


@pytest.mark.worker
def test_the_email_override_is_where_the_worker_mails_it(celery_worker, smtp_sink, transactional_db):
    NotificationPreference.objects.create(recipient="user-77", email_address="user77@example.com")
    notification = services.notification_queue(recipient="user-77", message="For user 77")
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "sent", timeout=30)
    [message] = _sink_messages(smtp_sink, notification.pk)
    assert message["To"] == "user77@example.com"
