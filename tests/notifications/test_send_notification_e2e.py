"""send_notification end to end: REST call -> queued row -> real Celery worker -> local SMTP server."""
import pytest

from notifications.models import Notification

from ..helpers import wait_until

pytestmark = pytest.mark.worker


def test_a_notification_reaches_the_smtp_sink_through_the_worker(api, demo_token, celery_worker, smtp_sink):
    before = len(smtp_sink.messages)
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"},
                        json={"name": "send_notification",
                              "arguments": {"user_id": "grace@example.com", "message": "Your order shipped"}})
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert body["result"]["status"] == "queued"
    notification_id = body["result"]["notification_id"]

    notification = wait_until(lambda: Notification.objects.filter(pk=notification_id, status="sent").first())
    assert notification.attempts == 1 and notification.sent_at is not None
    delivered = [m for m in smtp_sink.messages[before:] if f"X-Notification-Id: {notification_id}" in m["data"]]
    assert len(delivered) == 1
    assert delivered[0]["to"] == ["grace@example.com"]
    assert "Your order shipped" in delivered[0]["data"]
