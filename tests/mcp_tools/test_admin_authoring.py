"""Authoring, trying and watching tools in the admin; tokens, audit and tickets as support staff use them."""
import csv
import io
import json
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
import pytest

from mcp_tools.models import ApiToken, AuditEvent, McpEndpoint, Tool, ToolRevision
from mcp_tools.services.secret_config import MASK
from mcp_tools.services.tokens import token_issue
from tickets.models import Ticket, TicketComment

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def support_user(db):
    user = get_user_model().objects.create_user("helpdesk", "h@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support staff"))
    return user


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


def tool_form(**overrides):
    data = {
        "name": "customer_by_email", "title": "", "description": "Find a customer by e-mail", "enabled": "on",
        "input_schema": json.dumps({"type": "object", "properties": {"email": {"type": "string"}},
                                    "required": ["email"]}),
        "output_schema": "", "annotations": "{}", "kind": "echo", "config": "{}", "execution": "sync",
        "timeout_s": "30", "rate_limit": "", "sensitive_fields": "[]",
        "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def echo_tool(**fields):
    defaults = {"name": "echo_it", "description": "Echo", "kind": "echo", "config": {},
                "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}}}
    return Tool.objects.create(**{**defaults, **fields})


class TestAuthoringForm:
    def test_the_kind_starts_blank_and_every_kinds_settings_form_is_on_the_page(self, admin_client):
        page = admin_client.get(reverse("admin:mcp_tools_tool_add")).content.decode()
        assert '<option value="" selected>---------</option>' in page
        assert "data-kind-schemas=" in page and "Allowed tables" in page and "Base URL" in page
        assert "mcp_tools/admin/kind_config.js" in page and "<script>" not in page

    def test_blank_optional_settings_are_not_saved(self, admin_client):
        config = {"database": "", "allowed_tables": ["users", ""], "allowed_columns": {},
                  "query": "SELECT id FROM users WHERE email = %(email)s", "query_argument": "query", "max_rows": 5}
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"),
                                     tool_form(kind="sql_query", config=json.dumps(config)))
        assert response.status_code == 302, response.content.decode()[:3000]
        assert Tool.objects.get().config == {"allowed_tables": ["users"], "query": config["query"],
                                             "query_argument": "query", "max_rows": 5}

    def test_a_settings_error_is_shown_at_its_setting(self, admin_client):
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form(
            kind="http_request", config=json.dumps({"base_url": "ftp://files.example.com"})))
        assert response.status_code == 200
        widget = response.context["adminform"].form.fields["config"].widget
        assert "base_url" in widget.error_map and "does not match" in widget.error_map["base_url"][0]
        assert not Tool.objects.exists()

    def test_an_input_schema_that_is_a_list_says_so(self, admin_client):
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form(input_schema="[]"))
        page = response.content.decode()
        assert "The input schema must be a JSON object, not a list" in page
        assert "This field is required" not in page

    def test_json_fields_stay_indented_after_saving(self, admin_client):
        tool = echo_tool()
        page = admin_client.get(reverse("admin:mcp_tools_tool_change", args=[tool.pk])).content.decode()
        assert '{\n  &quot;type&quot;: &quot;object&quot;,\n  &quot;properties&quot;' in page

    def test_the_endpoint_slug_help_shows_the_placeholder(self, admin_client):
        page = admin_client.get(reverse("admin:mcp_tools_mcpendpoint_add")).content.decode()
        assert "Served at /mcp/&lt;slug&gt;" in page


class TestRevisions:
    def test_a_config_change_is_kept_with_who_and_a_diff(self, admin_client, root):
        response = admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form(
            kind="sql_query", config=json.dumps({"allowed_tables": ["users"], "query": "SELECT id FROM users"})))
        assert response.status_code == 302
        tool = Tool.objects.get()
        admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]), tool_form(
            kind="sql_query", config=json.dumps({"allowed_tables": ["users"], "query": "SELECT name FROM users"})))
        revision = ToolRevision.objects.get(tool=tool, version=2)
        assert revision.changed_by == root and revision.config["query"] == "SELECT name FROM users"
        page = admin_client.get(reverse("admin:mcp_tools_tool_revision_diff", args=[tool.pk, 2])).content.decode()
        assert '<del>-   &quot;query&quot;: &quot;SELECT id FROM users&quot;</del>' in page
        assert '<ins>+   &quot;query&quot;: &quot;SELECT name FROM users&quot;</ins>' in page

    def test_secret_header_values_never_reach_the_history(self, admin_client):
        config = {"base_url": "https://api.example.com", "secret_headers": {"Authorization": "Bearer s3cr3t-one"}}
        admin_client.post(reverse("admin:mcp_tools_tool_add"), tool_form(kind="http_request",
                                                                          config=json.dumps(config)))
        tool = Tool.objects.get()
        config["secret_headers"]["Authorization"] = "Bearer s3cr3t-two"
        admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]),
                          tool_form(kind="http_request", config=json.dumps(config)))
        tool.refresh_from_db()
        assert tool.config["secret_headers"]["Authorization"] == "Bearer s3cr3t-two"
        history = json.dumps(list(ToolRevision.objects.values()), default=str)
        assert "s3cr3t" not in history and MASK in history
        assert ToolRevision.objects.get(tool=tool, version=2).secrets_changed == ["secret_headers.Authorization"]
        page = admin_client.get(reverse("admin:mcp_tools_tool_revision_diff", args=[tool.pk, 2])).content.decode()
        assert "secret secret_headers.Authorization changed" in page and "s3cr3t" not in page

    def test_enable_and_disable_actions_are_revisions_too(self, admin_client, root):
        tool = echo_tool()
        admin_client.post(reverse("admin:mcp_tools_tool_changelist"),
                          {"action": "disable_tools", "_selected_action": [tool.pk]})
        tool.refresh_from_db()
        assert tool.enabled is False
        assert ToolRevision.objects.get(tool=tool, version=tool.version).changed_by == root


class TestTryIt:
    def test_try_runs_through_the_pipeline_as_the_admin_and_shows_the_audit_row(self, admin_client, root):
        tool = echo_tool(enabled=False)  # trying comes before enabling
        url = reverse("admin:mcp_tools_tool_try", args=[tool.pk])
        assert "Run the tool" in admin_client.get(url).content.decode()
        response = admin_client.post(url, {"arguments": json.dumps({"email": "ann@example.com"})})
        page = response.content.decode()
        event = AuditEvent.objects.get()
        assert (event.user, event.transport, event.outcome, event.arguments) == (
            root, "admin", "ok", {"email": "ann@example.com"})
        assert 'data-outcome="ok"' in page and "ann@example.com" in page
        assert reverse("admin:mcp_tools_auditevent_change", args=[event.pk]) in page

    def test_arguments_outside_the_schema_are_refused_and_audited(self, admin_client):
        tool = echo_tool(input_schema={"type": "object", "properties": {"n": {"type": "integer"}},
                                       "required": ["n"]})
        page = admin_client.post(reverse("admin:mcp_tools_tool_try", args=[tool.pk]),
                                 {"arguments": json.dumps({"n": "x"})}).content.decode()
        assert 'data-outcome="invalid"' in page and "is not of type" in page
        assert AuditEvent.objects.get().outcome == "invalid"

    def test_a_tool_needing_confirmation_runs_only_when_confirmed(self, admin_client):
        tool = echo_tool(requires_confirmation=True)
        url = reverse("admin:mcp_tools_tool_try", args=[tool.pk])
        admin_client.post(url, {"arguments": "{}"})
        admin_client.post(url, {"arguments": "{}", "confirm": "on"})
        refused, confirmed = AuditEvent.objects.order_by("pk").values_list("outcome", "confirmation")
        assert refused[0] != "ok" and confirmed == ("ok", "accept")

    def test_support_staff_cannot_try_tools(self, support_client):
        tool = echo_tool()
        assert support_client.post(reverse("admin:mcp_tools_tool_try", args=[tool.pk]),
                                   {"arguments": "{}"}).status_code == 403
        assert not AuditEvent.objects.exists()


def audit(tool_name="echo_it", outcome="ok", minutes_ago=1, duration_ms=10.0, **fields):
    return AuditEvent.objects.create(created_at=timezone.now() - timedelta(minutes=minutes_ago),
                                     tool_name=tool_name, outcome=outcome, duration_ms=duration_ms,
                                     request_id="r", transport="rest", **fields)


class TestStats:
    def test_tool_page_shows_calls_errors_and_percentiles(self, admin_client):
        tool = echo_tool()
        for ms in (10, 20, 30):
            audit(tool=tool, duration_ms=ms)
        audit(tool=tool, outcome="tool_error", duration_ms=40)
        audit(tool=tool, minutes_ago=3 * 24 * 60)  # in the week, not the day
        page = admin_client.get(reverse("admin:mcp_tools_tool_change", args=[tool.pk])).content.decode()
        day = page.split('data-window="1"')[1].split("</dl>")[0]
        week = page.split('data-window="2"')[1].split("</dl>")[0]
        assert "4 calls" in day and "<dd>1</dd>" in day and "5 calls" in week
        assert "25.0 ms" in day  # p50 of 10, 20, 30, 40
        assert "?tool_name=echo_it" in page

    def test_token_page_shows_its_usage(self, admin_client):
        issued = token_issue(name="agent", all_tools=True)
        audit(token=issued.token, token_prefix=issued.token.prefix)
        page = admin_client.get(reverse("admin:mcp_tools_apitoken_change", args=[issued.token.pk])).content.decode()
        assert "1 call" in page and f"token__id__exact={issued.token.pk}" in page


class TestTokens:
    def test_status_column_and_filter(self, admin_client):
        active = token_issue(name="active-one", all_tools=True).token
        expired = token_issue(name="expired-one", all_tools=True,
                              expires_at=timezone.now() - timedelta(days=1)).token
        revoked = token_issue(name="revoked-one", all_tools=True).token
        ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
        url = reverse("admin:mcp_tools_apitoken_changelist")
        page = admin_client.get(url).content.decode()
        assert 'mcp-status-active">active' in page and 'mcp-status-revoked">revoked' in page
        for status, token in (("active", active), ("expired", expired), ("revoked", revoked)):
            listed = admin_client.get(url, {"status": status}).context["cl"].result_list
            assert list(listed) == [token]

    def test_revoke_button_then_read_only_page(self, admin_client):
        token = token_issue(name="agent", all_tools=True).token
        change = reverse("admin:mcp_tools_apitoken_change", args=[token.pk])
        assert reverse("admin:mcp_tools_apitoken_revoke", args=[token.pk]) in admin_client.get(change).content.decode()
        admin_client.post(reverse("admin:mcp_tools_apitoken_revoke", args=[token.pk]))
        token.refresh_from_db()
        assert token.revoked_at is not None
        page = admin_client.get(change).content.decode()
        assert "token-revoked-banner" in page and 'name="_save"' not in page
        admin_client.post(change, {"name": "renamed", "scopes": "[]", "allowed_ips": "[]", "rate_limit": ""})
        token.refresh_from_db()
        assert token.name == "agent"

    def test_the_new_secret_page_shows_how_to_use_it(self, admin_client):
        McpEndpoint.objects.create(slug="support", name="Support")
        response = admin_client.post(reverse("admin:mcp_tools_apitoken_add"), {
            "name": "agent", "scopes": "[]", "allowed_ips": "[]", "rate_limit": "", "expires_at_0": "",
            "expires_at_1": ""}, follow=True)
        page = response.content.decode()
        secret = page.split('id="token-secret" class="mcp-secret">')[1].split("<")[0]
        for expected in ("http://testserver/mcp", "http://testserver/mcp/sse", "http://testserver/mcp/support",
                         f"Authorization: Bearer {secret}", f"X-API-Key: {secret}", "RunContext",
                         "MCPClientStreamableHTTP", "&quot;mcpServers&quot;", "curl -H"):
            assert expected in page, expected


class TestAudit:
    def test_search_finds_a_value_inside_the_arguments(self, admin_client):
        audit(arguments={"email": "ann.lee@example.com"})
        audit(arguments={"email": "bob@example.com"})
        listed = admin_client.get(reverse("admin:mcp_tools_auditevent_changelist"),
                                  {"q": "ann.lee@example"}).context["cl"].result_list
        assert [e.arguments["email"] for e in listed] == ["ann.lee@example.com"]

    def test_time_range_to_the_second(self, admin_client):
        now = timezone.now().replace(microsecond=0)
        inside = AuditEvent.objects.create(created_at=now - timedelta(seconds=30), tool_name="t", outcome="ok",
                                           request_id="in", transport="rest")
        AuditEvent.objects.create(created_at=now - timedelta(seconds=90), tool_name="t", outcome="ok",
                                  request_id="out", transport="rest")
        params = {"created_from": (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S"),
                  "created_until": now.strftime("%Y-%m-%dT%H:%M:%S")}
        response = admin_client.get(reverse("admin:mcp_tools_auditevent_changelist"), params)
        assert list(response.context["cl"].result_list) == [inside]
        assert now.strftime("%H:%M:%S") in response.content.decode() or "UTC" in response.content.decode()

    def test_csv_export_has_the_redacted_arguments(self, admin_client):
        audit(arguments={"email": "ann@example.com", "password": "[REDACTED]"})
        response = admin_client.get(reverse("admin:mcp_tools_auditevent_export"))
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert json.loads(rows[0]["arguments"]) == {"email": "ann@example.com", "password": "[REDACTED]"}

    def test_support_sees_no_link_it_may_not_open(self, support_client, root):
        tool = echo_tool()
        issued = token_issue(name="agent", all_tools=True)
        event = audit(tool=tool, token=issued.token, token_prefix=issued.token.prefix)
        url = reverse("admin:mcp_tools_auditevent_change", args=[event.pk])
        page = support_client.get(url).content.decode()
        assert reverse("admin:mcp_tools_tool_change", args=[tool.pk]) not in page and "echo_it" in page
        assert reverse("admin:mcp_tools_apitoken_change", args=[issued.token.pk]) not in page
        admin_client = Client()
        admin_client.force_login(root)
        admin_page = admin_client.get(url).content.decode()
        assert reverse("admin:mcp_tools_tool_change", args=[tool.pk]) in admin_page


class TestSupportWork:
    def test_tickets_show_and_find_their_number(self, support_client):
        ticket = Ticket.objects.create(title="Damaged parcel", description="x")
        Ticket.objects.create(title="Other", description="y")
        url = reverse("admin:tickets_ticket_changelist")
        page = support_client.get(url).content.decode()
        assert ticket.reference in page
        assert f'href="{reverse("admin:tickets_ticket_change", args=[ticket.pk])}' in page
        assert list(support_client.get(url, {"q": ticket.reference}).context["cl"].result_list) == [ticket]

    def test_assign_to_me(self, support_client, support_user):
        ticket = Ticket.objects.create(title="Damaged parcel", description="x")
        support_client.post(reverse("admin:tickets_ticket_changelist"),
                            {"action": "assign_to_me", "_selected_action": [ticket.pk]})
        ticket.refresh_from_db()
        assert ticket.assignee == support_user

    def test_notes_are_append_only_and_signed(self, support_client, support_user):
        ticket = Ticket.objects.create(title="Damaged parcel", description="x")
        note = TicketComment.objects.create(ticket=ticket, body="Agent wrote this", author_label="bot via token x")
        url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
        data = {"title": ticket.title, "description": "x", "priority": "medium", "status": "open",
                "requester": "", "assignee": "",
                "comments-TOTAL_FORMS": "2", "comments-INITIAL_FORMS": "1", "comments-0-id": str(note.pk),
                "comments-0-ticket": str(ticket.pk), "comments-0-body": "Rewritten!",
                "comments-1-body": "Called the customer", "comments-1-internal": "on"}
        response = support_client.post(url, data)
        assert response.status_code == 302, response.content.decode()[:3000]
        note.refresh_from_db()
        assert note.body == "Agent wrote this"
        added = TicketComment.objects.exclude(pk=note.pk).get()
        assert (added.body, added.author) == ("Called the customer", support_user)
        page = support_client.get(url).content.decode()
        assert "bot via token x, " in page and "helpdesk, " in page and "Comment on" not in page


class TestIndex:
    def test_product_first_and_a_title_for_support(self, support_client, root):
        admin_client = Client()
        admin_client.force_login(root)
        page = admin_client.get(reverse("admin:index")).content.decode()
        assert page.index("Tools") < page.index("Tickets") < page.index("Authentication and Authorization")
        assert "Tools, tokens and the audit trail" in page and reverse("mcp-dashboard") in page
        support_page = support_client.get(reverse("admin:index")).content.decode()
        assert "Support desk" in support_page and ">Tools<" not in support_page
