"""The invocation pipeline called directly, as every transport calls it."""
from django.db import connection
import pytest

from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from tickets.models import Ticket
from mcp_tools.services.lookup_cache import lookup_cache_bump

pytestmark = pytest.mark.django_db


@pytest.fixture
def tools(transactional_db):  # committed: sql_query tools read through their own read-only connection
    from demo_company.seed import seed_company, seed_tools

    seed_company()
    return {tool.name: tool for tool in seed_tools("http://127.0.0.1:8000")}


@pytest.fixture
def caller(tools):
    return Caller(token=token_issue(name="t", all_tools=True).token, client_ip="127.0.0.1", transport="test")


def test_success_returns_the_result_and_writes_one_audit_event(caller):
    outcome = tool_invoke(name="echo", arguments={"text": "hi"}, caller=caller, request_id="r-1")
    assert outcome.ok and outcome.result == {"echo": {"text": "hi"}}
    event = AuditEvent.objects.get()
    assert (event.pk, event.tool_name, event.outcome, event.request_id, event.token_prefix, event.client_ip) == (
        outcome.audit_id, "echo", "ok", "r-1", caller.token.prefix, "127.0.0.1")
    assert event.arguments == {"text": "hi"} and event.argument_bytes == len('{"text": "hi"}')


@pytest.mark.parametrize("name,arguments,outcome,code", [
    ("missing_tool", {}, "invalid", "unknown_tool"),
    ("create_ticket", {"title": "x"}, "invalid", "invalid_arguments"),
    ("create_ticket", "not an object", "invalid", "invalid_arguments"),
    ("database_query", {"query": "DROP TABLE users"}, "tool_error", "tool_error"),
])
def test_each_failure_leaves_exactly_one_event(caller, name, arguments, outcome, code):
    result = tool_invoke(name=name, arguments=arguments, caller=caller, request_id="r-2")
    assert (result.outcome, result.error_code) == (outcome, code)
    assert list(AuditEvent.objects.values_list("tool_name", "outcome", "error_code")) == [(name, outcome, code)]


def test_disabled_tool_is_denied(caller, tools):
    Tool.objects.filter(name="echo").update(enabled=False)
    lookup_cache_bump()  # QuerySet.update() sends no signal
    result = tool_invoke(name="echo", arguments={}, caller=caller)
    assert (result.outcome, result.error_code) == ("denied", "tool_disabled")


def test_secret_looking_arguments_are_redacted_in_the_audit(caller, tools):
    Tool.objects.create(name="login", description="d", kind="echo", input_schema={"type": "object"},
                        sensitive_fields=["pin"])
    tool_invoke(name="login", caller=caller, arguments={
        "user": "ada", "password": "hunter2", "pin": "1234", "nested": {"api_key": "k-123", "ok": 1}})
    stored = AuditEvent.objects.get().arguments
    assert stored == {"user": "ada", "password": "[REDACTED]", "pin": "[REDACTED]",
                      "nested": {"api_key": "[REDACTED]", "ok": 1}}


def test_a_result_outside_the_output_schema_rolls_back_the_tools_writes(caller, tools):
    Tool.objects.filter(name="create_ticket").update(
        output_schema={"type": "object", "required": ["missing_field"]})
    lookup_cache_bump()  # QuerySet.update() sends no signal
    result = tool_invoke(name="create_ticket", arguments={"title": "t", "description": "d"}, caller=caller)
    assert (result.outcome, result.error_code) == ("tool_error", "invalid_output")
    assert Ticket.objects.count() == 0
    assert AuditEvent.objects.get().outcome == "tool_error"


def test_a_failed_audit_write_leaves_no_ticket(caller, tools, monkeypatch):
    """Atomic kinds write their rows and the audit row together, or neither."""
    from mcp_tools.services import invocation

    real = invocation.audit_record
    calls = []

    def failing_once(**kwargs):
        calls.append(kwargs["outcome"])
        if len(calls) == 1:
            raise RuntimeError("audit insert failed")
        return real(**kwargs)

    monkeypatch.setattr(invocation, "audit_record", failing_once)
    result = tool_invoke(name="create_ticket", arguments={"title": "t", "description": "d"}, caller=caller)
    assert result.outcome == "internal_error"
    assert Ticket.objects.count() == 0
    assert calls == ["ok", "internal_error"]


def test_admin_user_without_token_needs_superuser(tools, django_user_model):
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    result = tool_invoke(name="echo", arguments={}, caller=Caller(user=staff, transport="admin"))
    assert result.error_code == "not_permitted"
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    assert tool_invoke(name="echo", arguments={}, caller=Caller(user=root, transport="admin")).ok


def test_get_customer_by_email_takes_no_sql_from_the_caller(caller, tools):
    result = tool_invoke(name="get_customer_by_email", caller=caller,
                         arguments={"email": "ada.lovelace0@example.com"})
    assert result.ok, result.message
    assert result.result["rows"][0]["email"] == "ada.lovelace0@example.com"
    injection = tool_invoke(name="get_customer_by_email", caller=caller,
                            arguments={"email": "x@example.com' OR '1'='1"})
    # The value is bound as a parameter, never spliced into the SQL: no row matches it.
    assert injection.ok and injection.result["rows"] == []
    assert connection.vendor == "postgresql"
