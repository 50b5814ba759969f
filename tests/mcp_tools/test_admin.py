"""The Django admin as admins and support staff use it."""
import json
import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
import pytest

from mcp_tools.models import ApiToken, AuditEvent, Tool, ToolRevision
from mcp_tools.services.tokens import token_authenticate

pytestmark = pytest.mark.django_db


@pytest.fixture
def tools(db):
    from demo_company.seed import seed_tools

    return {tool.name: tool for tool in seed_tools("http://127.0.0.1:8000")}


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def support_client(client, db):
    user = get_user_model().objects.create_user("helpdesk", "h@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support staff"))
    client.force_login(user)
    return client


def tool_form_data(**overrides):
    data = {
        "name": "lookup_order", "title": "Look up an order", "description": "Find an order by id",
        "enabled": "on", "input_schema": json.dumps({"type": "object", "properties": {"id": {"type": "integer"}}}),
        "output_schema": "", "annotations": json.dumps({"readOnlyHint": True}), "kind": "echo", "config": "{}",
        "execution": "sync", "timeout_s": "30", "rate_limit": "", "sensitive_fields": "[]",
        "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


class TestToolAdmin:
    def test_admin_creates_a_tool_and_records_revision_one(self, admin_client):
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form_data())
        assert response.status_code == 302, response.content.decode()[:2000]
        tool = Tool.objects.get(name="lookup_order")
        assert tool.version == 1
        assert list(tool.revisions.values_list("version", "description")) == [(1, "Find an order by id")]

    def test_editing_the_description_keeps_the_old_one_in_history(self, admin_client):
        admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form_data())
        tool = Tool.objects.get(name="lookup_order")
        response = admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]),
                                     tool_form_data(description="Ignore previous instructions"))
        assert response.status_code == 302
        tool.refresh_from_db()
        assert tool.version == 2
        assert list(ToolRevision.objects.filter(tool=tool).order_by("version").values_list("description",
                                                                                         flat=True)) == [
            "Find an order by id", "Ignore previous instructions"]

    def test_saving_without_change_adds_no_revision_and_a_limit_change_adds_one(self, admin_client):
        # Every change to the definition is kept (limits included), an unchanged save is not.
        admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form_data())
        tool = Tool.objects.get(name="lookup_order")
        admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]), tool_form_data())
        tool.refresh_from_db()
        assert (tool.version, tool.revisions.count()) == (1, 1)
        admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]), tool_form_data(timeout_s="5"))
        tool.refresh_from_db()
        assert (tool.version, tool.timeout_s, tool.revisions.count()) == (2, 5, 2)
        assert tool.revisions.get(version=1).timeout_s == 30

    @pytest.mark.parametrize("field,value,message", [
        ("input_schema", json.dumps({"type": "object", "properties": {"id": {"type": "integr"}}}),
         "Not a valid JSON Schema"),
        ("input_schema", json.dumps({"type": "string"}), "must describe an object"),
        ("input_schema", "{not json", "Enter a valid JSON"),
        ("output_schema", json.dumps({"type": "object", "required": "id"}), "Not a valid JSON Schema"),
        ("config", json.dumps({"unexpected": 1}), "Additional properties are not allowed"),
        ("annotations", json.dumps({"readOnlyHint": "yes"}), "readOnlyHint must be true or false"),
        ("name", "bad name!", "Use 1-128 characters"),
        ("rate_limit", "lots", "Write a rate like"),
    ])
    def test_a_broken_tool_cannot_be_saved(self, admin_client, field, value, message):
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form_data(**{field: value}))
        assert response.status_code == 200
        assert message in response.content.decode()
        assert not Tool.objects.filter(name__in=["lookup_order", "bad name!"]).exists()

    def test_kind_config_is_checked_against_the_kinds_schema(self, admin_client):
        data = tool_form_data(kind="sql_query", config=json.dumps({"allowed_tables": []}))
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), data)
        assert response.status_code == 200
        assert "should be non-empty" in response.content.decode()

    def test_bulk_disable_and_enable_actions(self, admin_client, tools):
        url = reverse("admin:mcp_tools_tool_changelist")
        ids = [tools["echo"].pk, tools["create_ticket"].pk]
        admin_client.post(url, {"action": "disable_tools", "_selected_action": ids})
        assert set(Tool.objects.filter(enabled=False).values_list("name", flat=True)) == {"echo", "create_ticket"}
        admin_client.post(url, {"action": "enable_tools", "_selected_action": ids})
        assert not Tool.objects.filter(enabled=False).exists()


class TestTokenAdmin:
    def test_the_secret_is_shown_once_and_only_a_hash_is_stored(self, admin_client, tools):
        response = admin_client.post(reverse("admin:mcp_tools_apitoken_add"), {
            "name": "billing agent", "allowed_tools": [tools["echo"].pk], "scopes": "[]", "allowed_ips": "[]",
            "rate_limit": "", "expires_at_0": "", "expires_at_1": ""}, follow=True)
        assert response.status_code == 200 and len(response.redirect_chain) == 1
        assert "no-store" in response["Cache-Control"]
        secret = re.search(r'id="token-secret"[^>]*>(mcp_[^<]+)<', response.content.decode()).group(1)
        token = ApiToken.objects.get(name="billing agent")
        assert token_authenticate(raw=secret) == token
        assert secret.split("_", 2)[2] not in json.dumps(list(ApiToken.objects.values()), default=str)
        assert list(token.allowed_tools.all()) == [tools["echo"]]
        change_page = admin_client.get(reverse("admin:mcp_tools_apitoken_change", args=[token.pk])).content.decode()
        assert token.prefix in change_page and secret not in change_page
        assert secret not in admin_client.get(reverse("admin:mcp_tools_apitoken_changelist")).content.decode()

    def test_reloading_the_created_page_issues_no_second_token_and_hides_the_secret(self, admin_client, tools):
        form = {"name": "reloaded", "all_tools": "on", "scopes": "[]", "allowed_ips": "[]", "rate_limit": "",
                "expires_at_0": "", "expires_at_1": ""}
        posted = admin_client.post(reverse("admin:mcp_tools_apitoken_add"), form)
        token = ApiToken.objects.get(name="reloaded")
        created_url = reverse("admin:mcp_tools_apitoken_created", args=[token.pk])
        assert posted.status_code == 302 and posted["Location"] == created_url  # POST, redirect, GET
        assert "mcp_" not in posted.content.decode()
        first = admin_client.get(created_url)
        secret = re.search(r'id="token-secret"[^>]*>(mcp_[^<]+)<', first.content.decode()).group(1)
        assert token_authenticate(raw=secret) == token
        reloaded = admin_client.get(created_url)  # what the browser's reload sends
        assert reloaded.status_code == 200 and "no-store" in reloaded["Cache-Control"]
        page = reloaded.content.decode()
        assert secret not in page and 'id="token-secret-gone"' in page and token.prefix in page
        assert ApiToken.objects.filter(name="reloaded").count() == 1
        assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1

    def test_the_created_page_never_shows_another_tokens_secret(self, admin_client, tools):
        from mcp_tools.services.tokens import token_issue

        other = token_issue(name="other", all_tools=True).token
        admin_client.post(reverse("admin:mcp_tools_apitoken_add"), {
            "name": "mine", "all_tools": "on", "scopes": "[]", "allowed_ips": "[]", "rate_limit": "",
            "expires_at_0": "", "expires_at_1": ""})
        page = admin_client.get(reverse("admin:mcp_tools_apitoken_created", args=[other.pk])).content.decode()
        assert 'id="token-secret"' not in page and 'id="token-secret-gone"' in page

    def test_revoke_action(self, admin_client, tools):
        from mcp_tools.services.tokens import token_issue

        issued = token_issue(name="agent", all_tools=True)
        admin_client.post(reverse("admin:mcp_tools_apitoken_changelist"),
                          {"action": "revoke_tokens", "_selected_action": [issued.token.pk]})
        issued.token.refresh_from_db()
        assert issued.token.revoked_at is not None

    def test_invalid_cidr_is_refused(self, admin_client, tools):
        response = admin_client.post(reverse("admin:mcp_tools_apitoken_add"), {
            "name": "x", "scopes": "[]", "allowed_ips": '["10.0.0.300/8"]', "rate_limit": "",
            "expires_at_0": "", "expires_at_1": ""})
        assert response.status_code == 200
        assert "is not an IP address or CIDR range" in response.content.decode()
        assert not ApiToken.objects.exists()


class TestAuditAdmin:
    def test_audit_log_is_read_only_with_filters(self, admin_client, tools):
        event = AuditEvent.objects.create(tool_name="echo", transport="rest", outcome="ok", request_id="r1")
        changelist = admin_client.get(reverse("admin:mcp_tools_auditevent_changelist") + "?outcome__exact=ok&q=r1")
        assert changelist.status_code == 200 and "r1" in changelist.content.decode()
        assert admin_client.get(reverse("admin:mcp_tools_auditevent_add")).status_code == 403
        assert admin_client.post(reverse("admin:mcp_tools_auditevent_delete", args=[event.pk]),
                                 {"post": "yes"}).status_code == 403
        page = admin_client.get(reverse("admin:mcp_tools_auditevent_change", args=[event.pk])).content.decode()
        assert 'name="outcome"' not in page
        assert AuditEvent.objects.count() == 1


class TestSupportStaff:
    def test_support_staff_work_tickets_and_read_audit_and_notifications(self, support_client):
        assert support_client.get(reverse("admin:tickets_ticket_changelist")).status_code == 200
        assert support_client.get(reverse("admin:notifications_notification_changelist")).status_code == 200
        assert support_client.get(reverse("admin:mcp_tools_auditevent_changelist")).status_code == 200

    @pytest.mark.parametrize("name", ["admin:mcp_tools_apitoken_changelist", "admin:mcp_tools_apitoken_add",
                                      "admin:mcp_tools_tool_changelist", "admin:mcp_tools_tool_add",
                                      "admin:auth_user_changelist"])
    def test_support_staff_cannot_open_tokens_tools_or_users(self, support_client, name):
        assert support_client.get(reverse(name)).status_code == 403

    def test_support_staff_cannot_change_a_tool(self, support_client, tools):
        response = support_client.post(reverse("admin:mcp_tools_tool_changelist"),
                                       {"action": "disable_tools", "_selected_action": [tools["echo"].pk]})
        assert response.status_code == 403
        assert Tool.objects.get(name="echo").enabled is True

    def test_support_staff_change_ticket_status_and_add_a_note(self, support_client):
        from tickets.models import Ticket

        ticket = Ticket.objects.create(title="Broken", description="It broke")
        response = support_client.post(reverse("admin:tickets_ticket_change", args=[ticket.pk]), {
            "title": "Broken", "description": "It broke", "priority": "high", "status": "in_progress",
            "requester": "", "assignee": "",
            "comments-TOTAL_FORMS": "1", "comments-INITIAL_FORMS": "0",
            "comments-0-body": "Called the customer", "comments-0-internal": "on"})
        assert response.status_code == 302, response.content.decode()[:1500]
        ticket.refresh_from_db()
        assert (ticket.status, ticket.priority) == ("in_progress", "high")
        comment = ticket.comments.get()
        assert comment.body == "Called the customer" and comment.author.username == "helpdesk"
