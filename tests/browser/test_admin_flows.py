"""A new admin authors, tries and enables tools, and issues a token; a support person works from the audit log.

Real Chromium, the live server (WSGI, real sockets), the product's strict CSP: a page whose script is
refused, or that fails to load a file, fails the test.
"""
import importlib
import json
import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect
import pytest

from demo_company.models import Customer
from demo_company.seed import seed_company
from mcp_tools.models import ApiToken, AuditEvent, Tool
from tickets.models import Ticket

from ..helpers import LocalHttpServer, json_reply
from .conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_PASSWORD = "browser-admin-pw-1"
SUPPORT_PASSWORD = "browser-support-pw-1"


def support_group():
    """The 'Support staff' group as the migrations make it (a flush by an earlier live-server test removes it)."""
    from django.apps import apps

    for name in ("0002_support_staff_group", "0003_notes_append_only"):
        migration = importlib.import_module(f"tickets.migrations.{name}")
        (migration.create_group if hasattr(migration, "create_group") else migration.drop_change_permission)(
            apps, None)
    return Group.objects.get(name="Support staff")


@pytest.fixture
def people(transactional_db):
    User = get_user_model()
    User.objects.create_superuser("alice", "alice@example.com", ADMIN_PASSWORD)
    support = User.objects.create_user("sam", "sam@example.com", SUPPORT_PASSWORD, is_staff=True)
    support.groups.add(support_group())


@pytest.fixture
def orders_api():
    def answer(method, path, headers, body):
        match = re.fullmatch(r"/orders/([A-Za-z0-9-]+)", path)
        if method == "GET" and match:
            return json_reply(200, {"order": match.group(1), "status": "shipped"})
        return json_reply(404, {"error": "no such order"})

    with LocalHttpServer(answer) as server:
        yield server


def saved(page):
    """Wait for the admin's success message; on failure, say what the form reported."""
    try:
        expect(page.locator("ul.messagelist .success")).to_be_visible()
    except AssertionError:
        raise AssertionError(page.locator(".errorlist, .errornote").all_inner_texts()) from None


def fill_basics(page, name, description, input_schema):
    page.goto("/admin/mcp_tools/tool/add/")
    assert page.locator("#id_kind").input_value() == ""  # the kind starts blank
    page.fill("#id_name", name)
    page.fill("#id_description", description)
    page.fill("#id_input_schema", json.dumps(input_schema, indent=2))


def try_tool(page, tool_name, fill):
    tool = Tool.objects.get(name=tool_name)
    page.goto(f"/admin/mcp_tools/tool/{tool.pk}/change/")
    page.click("a.mcp-try-link")
    for name, value in fill.items():
        page.fill(f"input[name='rjf§{name}']", value)
    page.click("input[name=_run]")
    expect(page.locator("#mcp-try-result")).to_be_visible()
    return page.locator("#mcp-try-result")


def test_admin_authors_tries_and_enables_a_sql_and_an_http_tool_then_issues_and_revokes_a_token(
        people, new_page, shot, orders_api):
    seed_company()
    customer = Customer.objects.order_by("pk").first()
    page, problems = new_page()
    login(page, "alice", ADMIN_PASSWORD)
    assert "Tools, tokens and the audit trail" in page.content()
    shot(page, "01-admin-index")

    # A SQL tool, written from the settings form alone; first a mistake, reported at its setting.
    fill_basics(page, "find_customer", "Find a customer by e-mail",
                {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]})
    page.select_option("#id_kind", "sql_query")
    expect(page.locator("text=Allowed tables")).to_be_visible()
    page.uncheck("#id_enabled")
    page.click("input[name=_continue]")
    expect(page.locator(".errorlist").first).to_be_visible()
    assert "This setting is required" in page.content() or "should be non-empty" in page.content()
    shot(page, "02-sql-tool-error-at-setting")
    page.fill("input[name='rjf§allowed_tables§0']", "users")
    page.fill("textarea[name='rjf§query']", "SELECT name, email FROM users WHERE email = %(email)s")
    page.fill("input[name='rjf§max_rows']", "5")
    page.click("input[name=_continue]")
    saved(page)
    tool = Tool.objects.get(name="find_customer")
    assert tool.config == {"allowed_tables": ["users"], "max_rows": 5, "query_argument": "query",
                           "query": "SELECT name, email FROM users WHERE email = %(email)s"}
    shot(page, "03-sql-tool-saved")

    result = try_tool(page, "find_customer", {"email": customer.email})
    assert result.get_attribute("data-outcome") == "ok"
    assert customer.name in result.inner_text()
    assert "alice (transport admin)" in page.locator("#mcp-try-audit").inner_text()
    shot(page, "04-sql-tool-tried")

    # An HTTP tool against a local API; the private address needs an allowed_hosts entry.
    fill_basics(page, "order_status", "Shipping status of an order",
                {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]})
    page.select_option("#id_kind", "http_request")
    page.fill("input[name='rjf§base_url']", orders_api.url)
    page.fill("input[name='rjf§path']", "/orders/{order_id}")
    page.select_option("select[name='rjf§send_arguments_as']", "none")
    page.click("input[name=_continue]")
    # Saving proves what it can: a loopback address without an allowed_hosts entry is refused at the field.
    expect(page.locator(".errorlist").first).to_be_visible()
    assert "allowed_hosts" in page.content() and "loopback" in page.content()
    assert not Tool.objects.filter(name="order_status").exists()
    page.click("text=Allowed hosts >> xpath=.. >> text=Add item")
    page.fill("input[name='rjf§allowed_hosts§0']", "127.0.0.1")
    page.click("input[name=_continue]")
    saved(page)
    tool = Tool.objects.get(name="order_status")
    result = try_tool(page, "order_status", {"order_id": "A-1042"})
    assert result.get_attribute("data-outcome") == "ok", result.inner_text()
    assert 'shipped' in result.inner_text() and 'A-1042' in result.inner_text()
    assert orders_api.requests[-1]["path"] == "/orders/A-1042"
    shot(page, "05-http-tool-tried")

    # A later edit shows in the history as a diff.
    page.goto(f"/admin/mcp_tools/tool/{tool.pk}/change/")
    page.fill("#id_description", "Shipping status of an order, from the orders API")
    page.click("input[name=_continue]")
    saved(page)
    page.goto(f"/admin/mcp_tools/tool/{tool.pk}/revisions/2/diff/")
    assert any("from the orders API" in text for text in page.locator("ins").all_inner_texts())
    shot(page, "06-revision-diff")

    # Enable both from the list.
    page.goto("/admin/mcp_tools/tool/")
    for name in ("find_customer", "order_status"):
        page.check(f"tr:has(a:text-is('{name}')) input.action-select")
    page.select_option("select[name=action]", "enable_tools")
    page.click("button[name=index]")
    saved(page)
    assert set(Tool.objects.filter(enabled=True).values_list("name", flat=True)) == {"find_customer",
                                                                                     "order_status"}

    # A token for exactly these two tools; the one-time page says how to use it.
    page.goto("/admin/mcp_tools/apitoken/add/")
    page.fill("#id_name", "support agent")
    for tool in Tool.objects.filter(name__in=["find_customer", "order_status"]):
        page.select_option("#id_allowed_tools_from", str(tool.pk))
        page.click("#id_allowed_tools_add")
    page.click("input[name=_save]")
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("mcp_")
    assert f"Bearer {secret}" in page.locator("#snippet-desktop").inner_text()
    assert "RunContext" in page.locator("#snippet-mistral").inner_text()
    assert f"X-API-Key: {secret}" in page.locator("#snippet-curl").inner_text()
    shot(page, "07-token-created")
    token = ApiToken.objects.get(name="support agent")
    assert set(token.allowed_tools.values_list("name", flat=True)) == {"find_customer", "order_status"}

    page.goto(f"/admin/mcp_tools/apitoken/{token.pk}/change/")
    page.click("a.mcp-revoke-link")
    page.click("input[name=_revoke]")
    expect(page.locator("#token-revoked-banner")).to_be_visible()
    assert page.locator("input[name=_save]").count() == 0
    shot(page, "08-token-revoked")
    page.goto("/admin/mcp_tools/apitoken/?status=revoked")
    assert page.locator("#result_list .mcp-status-revoked").count() == 1

    assert problems.messages == []


def test_support_finds_a_call_by_argument_and_works_the_ticket(people, new_page, shot):
    echo = Tool.objects.create(name="lookup", description="x", kind="echo", config={},
                               input_schema={"type": "object"})
    AuditEvent.objects.create(tool=echo, tool_name="lookup", outcome="ok", request_id="req-1", transport="rest",
                              arguments={"email": "dana.kim@example.com"})
    AuditEvent.objects.create(tool=echo, tool_name="lookup", outcome="ok", request_id="req-2", transport="rest",
                              arguments={"email": "other@example.com"})
    ticket = Ticket.objects.create(title="Refund for dana.kim@example.com", description="Charged twice",
                                   requester="dana.kim@example.com")
    page, problems = new_page(width=1280)
    login(page, "sam", SUPPORT_PASSWORD)
    assert "Support desk" in page.content()
    assert page.locator("#content-main a:text-is('Tools')").count() == 0

    page.goto("/admin/mcp_tools/auditevent/")
    page.fill("#searchbar", "dana.kim@example")
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(r"q=dana.kim"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    assert "dana.kim@example.com" in rows.first.inner_text()
    # The list fits a 1280 px window: neither the page nor the results table scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate("(r => r.scrollWidth <= r.clientWidth)(document.querySelector('.results'))")
    shot(page, "09-audit-search")
    rows.first.locator("th a, td a").first.click()
    expect(page).to_have_url(re.compile(r"/auditevent/\d+/change/"))
    assert "lookup" in page.content()
    assert page.locator("a[href*='/admin/mcp_tools/tool/']").count() == 0  # no link support may not open

    page.goto("/admin/tickets/ticket/")
    page.fill("#searchbar", ticket.reference)
    page.press("#searchbar", "Enter")
    expect(page).to_have_url(re.compile(r"q=TICK"))
    page.check("#result_list input.action-select")
    page.select_option("select[name=action]", "assign_to_me")
    page.click("button[name=index]")
    saved(page)
    page.click(f"a:text-is('{ticket.reference}')")
    page.fill("textarea[name='comments-0-body']", "Refund issued, told the customer.")
    page.select_option("#id_status", "resolved")
    page.click("input[name=_continue]")
    saved(page)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee.username) == ("resolved", "sam")
    assert "sam, " in page.locator(".inline-related h3").first.inner_text()
    shot(page, "10-ticket-worked")

    assert problems.messages == []
