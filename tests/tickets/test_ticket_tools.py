"""The support workflow tools and the admin, through the one invocation pipeline."""
import email

from django.contrib.auth import get_user_model
import pytest

from demo_company.seed import seed_tools
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from notifications import services as notification_services
from notifications.models import Notification
from tests.helpers import wait_until
from tickets.models import Ticket, TicketComment


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(notification_services, "notification_enqueue",
                        lambda *, notification_id, countdown=None: calls.append(notification_id))
    return calls


@pytest.fixture
def agent(db):
    seed_tools("http://127.0.0.1:9")
    caller = Caller(token=token_issue(name="agent", all_tools=True).token, transport="test")

    def call(name, **arguments):
        return tool_invoke(name=name, arguments=arguments, caller=caller)
    return call


@pytest.fixture
def support_agent(db):
    return get_user_model().objects.create_user("sam", email="sam@support.example.com", password="x")


def _ticket(agent, **extra):
    created = agent("create_ticket", title="Cannot log in", description="Since this morning", **extra)
    assert created.ok, created.message
    return created.result


class TestGetTicket:
    def test_by_reference_or_number_with_notes(self, agent):
        ticket = _ticket(agent)
        agent("update_ticket", ticket_id=ticket["id"], note="Asked for a screenshot")
        for ref in (ticket["ticket_id"], ticket["id"], str(ticket["id"])):
            got = agent("get_ticket", ticket_id=ref)
            assert got.ok, got.message
            assert got.result["title"] == "Cannot log in"
            assert [n["body"] for n in got.result["notes"]] == ["Asked for a screenshot"]

    def test_an_unknown_ticket_is_a_tool_error(self, agent):
        result = agent("get_ticket", ticket_id="TICK-99999")
        assert result.outcome == "tool_error" and "No ticket" in result.message

    def test_a_malformed_reference_is_invalid(self, agent):
        result = agent("get_ticket", ticket_id="ticket five")
        assert result.outcome == "invalid" and "TICK-00042" in result.message


class TestUpdateTicket:
    def test_status_priority_and_note(self, agent):
        ticket = _ticket(agent)
        result = agent("update_ticket", ticket_id=ticket["ticket_id"], status="in_progress", priority="high",
                       note="Working on it", note_internal=False)
        assert result.ok, result.message
        row = Ticket.objects.get(pk=ticket["id"])
        assert (row.status, row.priority) == ("in_progress", "high")
        comment = TicketComment.objects.get(ticket=row)
        assert comment.internal is False and comment.author_label.startswith("update_ticket via token ")

    def test_an_unknown_status_is_refused_by_the_schema(self, agent):
        ticket = _ticket(agent)
        result = agent("update_ticket", ticket_id=ticket["id"], status="done")
        assert result.outcome == "invalid"
        assert Ticket.objects.get(pk=ticket["id"]).status == "open"

    def test_nothing_to_change_is_a_clear_error(self, agent):
        result = agent("update_ticket", ticket_id=_ticket(agent)["id"])
        assert result.outcome == "tool_error" and "Nothing to change" in result.message

    def test_assigning_emails_the_assignee_once(self, agent, support_agent, enqueued,
                                                django_capture_on_commit_callbacks):
        ticket = _ticket(agent)
        with django_capture_on_commit_callbacks(execute=True):
            result = agent("update_ticket", ticket_id=ticket["id"], assignee="sam")
        assert result.ok and result.result["assignee"] == "sam"
        notification = Notification.objects.get()
        assert notification.recipient == "sam@support.example.com"
        assert ticket["ticket_id"] in notification.subject
        assert enqueued == [notification.pk]
        with django_capture_on_commit_callbacks(execute=True):
            agent("update_ticket", ticket_id=ticket["id"], assignee="sam", status="in_progress")
        assert Notification.objects.count() == 1  # same assignee: no second e-mail

    def test_an_unknown_assignee_changes_nothing(self, agent, enqueued):
        ticket = _ticket(agent)
        result = agent("update_ticket", ticket_id=ticket["id"], assignee="ghost", status="closed", note="x")
        assert result.outcome == "invalid" and "ghost" in result.message
        row = Ticket.objects.get(pk=ticket["id"])
        assert (row.status, row.assignee_id, row.comments.count()) == ("open", None, 0)
        assert not Notification.objects.exists()


class TestListTickets:
    def test_filters_and_limit(self, agent, support_agent, enqueued):
        first = _ticket(agent, priority="urgent")
        _ticket(agent, priority="low")
        third = _ticket(agent, priority="urgent")
        agent("update_ticket", ticket_id=first["id"], assignee="sam", status="waiting")
        urgent = agent("list_tickets", priority="urgent")
        assert [t["id"] for t in urgent.result["tickets"]] == [third["id"], first["id"]]
        assert [t["id"] for t in agent("list_tickets", assignee="sam").result["tickets"]] == [first["id"]]
        assert agent("list_tickets", assignee="none").result["count"] == 2
        assert [t["id"] for t in agent("list_tickets", status="waiting").result["tickets"]] == [first["id"]]
        assert agent("list_tickets", limit=1).result["count"] == 1
        assert agent("list_tickets", limit=500).outcome == "invalid"


class TestAdmin:
    def _change(self, admin_client, ticket, **changes):
        data = {"title": ticket.title, "description": ticket.description, "priority": ticket.priority,
                "status": ticket.status, "requester": ticket.requester,
                "assignee": ticket.assignee_id or "",
                "comments-TOTAL_FORMS": "0", "comments-INITIAL_FORMS": "0",
                "comments-MIN_NUM_FORMS": "0", "comments-MAX_NUM_FORMS": "1000", **changes}
        return admin_client.post(f"/admin/tickets/ticket/{ticket.pk}/change/", data)

    def test_assigning_in_the_admin_emails_the_assignee(self, admin_client, support_agent, enqueued,
                                                       django_capture_on_commit_callbacks):
        ticket = Ticket.objects.create(title="VPN down", description="d")
        with django_capture_on_commit_callbacks(execute=True):
            response = self._change(admin_client, ticket, assignee=support_agent.pk)
        assert response.status_code == 302, response.content[:2000]
        notification = Notification.objects.get()
        assert notification.recipient == support_agent.email and enqueued == [notification.pk]
        with django_capture_on_commit_callbacks(execute=True):
            self._change(admin_client, Ticket.objects.get(pk=ticket.pk), status="waiting")
        assert Notification.objects.count() == 1

    def test_bulk_status_change_and_search(self, admin_client):
        a = Ticket.objects.create(title="Alpha widget broken", description="d")
        b = Ticket.objects.create(title="Beta", description="d")
        admin_client.post("/admin/tickets/ticket/", {"action": "mark_resolved", "_selected_action": [a.pk, b.pk]})
        assert set(Ticket.objects.values_list("status", flat=True)) == {"resolved"}
        page = admin_client.get("/admin/tickets/ticket/?q=widget&status__exact=resolved").content.decode()
        assert "Alpha widget broken" in page and "Beta" not in page


@pytest.mark.worker
def test_the_assignment_email_reaches_the_assignee_through_the_worker(celery_worker, smtp_sink, transactional_db):
    seed_tools("http://127.0.0.1:9")
    get_user_model().objects.create_user("kim", email="kim@support.example.com", password="x")
    caller = Caller(token=token_issue(name="agent", all_tools=True).token)
    ticket = tool_invoke(name="create_ticket", arguments={"title": "Refund", "description": "d"}, caller=caller)
    assert tool_invoke(name="update_ticket", arguments={"ticket_id": ticket.result["id"], "assignee": "kim"},
                       caller=caller).ok
    notification = Notification.objects.get(recipient="kim@support.example.com")
    wait_until(lambda: Notification.objects.get(pk=notification.pk).status == "sent", timeout=30)
    messages = [email.message_from_string(m["data"]) for m in list(smtp_sink.messages)]
    assert [m["To"] for m in messages if m["X-Notification-Id"] == str(notification.pk)] == \
        ["kim@support.example.com"]


class TestAssigneePreferences:
    def test_an_assignee_who_muted_notifications_is_not_emailed(self, agent, support_agent, enqueued,
                                                               django_capture_on_commit_callbacks):
        from notifications.models import NotificationPreference

        NotificationPreference.objects.create(recipient="SAM@support.example.com", muted=True)
        ticket = _ticket(agent)
        with django_capture_on_commit_callbacks(execute=True):
            result = agent("update_ticket", ticket_id=ticket["id"], assignee="sam")
        assert result.ok and result.result["assignee"] == "sam"
        notification = Notification.objects.get()
        assert (notification.status, notification.skip_reason) == \
            ("skipped", "The recipient has muted all notifications.")
        assert enqueued == []

    def test_the_assignment_email_goes_to_the_assignees_override_address(self, agent, support_agent, enqueued,
                                                                          django_capture_on_commit_callbacks):
        from notifications.models import NotificationPreference

        NotificationPreference.objects.create(recipient=support_agent.email, email_address="sam.mobile@example.com")
        with django_capture_on_commit_callbacks(execute=True):
            agent("update_ticket", ticket_id=_ticket(agent)["id"], assignee="sam")
        notification = Notification.objects.get()
        assert (notification.status, notification.target) == ("queued", "sam.mobile@example.com")
        assert enqueued == [notification.pk]

    def test_the_admin_is_told_when_the_assignee_was_not_notified(self, admin_client, support_agent, enqueued):
        from notifications.models import NotificationPreference

        NotificationPreference.objects.create(recipient=support_agent.email, email_enabled=False,
                                              webhook_enabled=False)
        ticket = Ticket.objects.create(title="Printer", description="d")
        response = TestAdmin()._change(admin_client, ticket, assignee=support_agent.pk)
        assert response.status_code == 302
        page = admin_client.get(response.url).content.decode()
        assert "The new assignee sam was not notified: The recipient has turned off every channel." in page
        assert Notification.objects.get().status == "skipped" and enqueued == []
