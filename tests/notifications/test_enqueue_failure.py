"""A delivery that cannot be enqueued after commit does not turn the committed call into an error."""
from mcp_tools.models import AuditEvent
from mcp_tools.services.invocation import tool_invoke
from notifications import services
from notifications.models import Notification


def test_an_enqueue_that_raises_leaves_one_ok_audit_row_and_a_queued_notification(notify_tool, caller, monkeypatch):
    # What a venv without kombu's Redis dependencies did: the publish raised ImportError after the commit.
    def broken_enqueue(**kwargs):
        raise ModuleNotFoundError("No module named 'packaging'")

    monkeypatch.setattr(services, "notification_enqueue", broken_enqueue)
    monkeypatch.setattr(services, "broker_check", lambda **kwargs: None)
    notify_tool()
    result = tool_invoke(name="notify", arguments={"user_id": "ann@example.com", "message": "hi"}, caller=caller,
                         request_id="req-enqueue-failure")
    assert result.ok, result.message
    assert result.result["status"] == "queued"
    # The notification stays queued for the stale-notification sweeper (beat) to enqueue again.
    assert Notification.objects.get(pk=result.result["notification_id"]).status == Notification.Status.QUEUED
    assert list(AuditEvent.objects.filter(request_id="req-enqueue-failure").values_list("outcome", flat=True)) == ["ok"]
