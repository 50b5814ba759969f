"""Secrets in arguments never land in an audit event or in the logs."""
import io
import json
import logging

import pytest

from mcp_tools.log_redaction import RedactingStreamHandler, scrub_text
from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.audit import redact_text

PASSWORD = "hunter2-Pa55word!"
API_KEY = "sk-live-7d1e4b9a0c"


def audit_row_text(event) -> str:
    return json.dumps({f.name: str(getattr(event, f.name)) for f in AuditEvent._meta.fields})


@pytest.fixture
def console_output():
    """What the product's console handler writes (the logs an operator keeps)."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, RedactingStreamHandler)]
    assert handlers, "the console handler should redact secrets"
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    yield buffer
    for handler, stream in zip(handlers, previous):
        handler.setStream(stream)


@pytest.fixture
def login_tool(transactional_db):
    return Tool.objects.create(
        name="login_check", description="d", kind="echo", sensitive_fields=["ssn"],
        input_schema={"type": "object", "properties": {
            "user": {"type": "string"}, "password": {"type": "string", "minLength": 30},
            "ssn": {"type": "string"}, "nested": {"type": "object"}}})


def invoke(api, secret, arguments, name="login_check"):
    return api.post("/mcp/v1/tools/invoke", json={"name": name, "arguments": arguments},
                    headers={"Authorization": f"Bearer {secret}"})


def test_secret_arguments_are_redacted_in_the_audit_and_absent_from_logs(
        api, login_tool, issue_token, caplog, console_output):
    caplog.set_level(logging.DEBUG)
    secret = issue_token(all_tools=True).secret
    arguments = {"user": "ada", "password": PASSWORD + "x" * 20, "ssn": "078-05-1120",
                 "nested": {"api_key": API_KEY, "items": [{"client_secret": "cs-991122"}]}}
    assert invoke(api, secret, arguments).status_code == 200
    event = AuditEvent.objects.get()
    assert event.arguments == {"user": "ada", "password": "[REDACTED]", "ssn": "[REDACTED]",
                               "nested": {"api_key": "[REDACTED]", "items": [{"client_secret": "[REDACTED]"}]}}
    row = audit_row_text(event)
    for value in (PASSWORD, "078-05-1120", API_KEY, "cs-991122", secret):
        assert value not in row
        assert value not in caplog.text
        assert value not in console_output.getvalue()


def test_a_refused_value_quoted_in_the_error_is_not_audited(api, login_tool, issue_token, caplog):
    secret = issue_token(all_tools=True).secret
    response = invoke(api, secret, {"password": PASSWORD})  # too short: the validator quotes it
    assert response.status_code == 400
    assert PASSWORD in response.json()["error"]  # the caller sees their own value...
    event = AuditEvent.objects.get()
    assert event.outcome == "invalid"
    assert PASSWORD not in audit_row_text(event) and "[REDACTED]" in event.error_message  # ...the audit does not
    assert PASSWORD not in caplog.text


def test_a_crashing_tools_secret_detail_is_scrubbed_from_the_logs(api, transactional_db, issue_token,
                                                                   console_output):
    Tool.objects.create(name="buggy", description="raises", kind="test_explode", input_schema={"type": "object"})
    secret = issue_token(all_tools=True).secret
    response = invoke(api, secret, {}, name="buggy")
    assert response.status_code == 500
    logged = console_output.getvalue()
    assert "Traceback" in logged or "exc_info" in logged  # the traceback is kept...
    assert "hunter2" not in logged and "password=[REDACTED]" in logged  # ...without the secret


def test_the_callers_token_is_never_logged(api, transactional_db, issue_token, console_output, caplog):
    caplog.set_level(logging.DEBUG)
    secret = issue_token(all_tools=True).secret
    api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {secret}"})
    api.get("/mcp/v1/tools", headers={"X-API-Key": secret + "-wrong"})
    assert secret not in console_output.getvalue() and secret not in caplog.text


@pytest.mark.parametrize("line, expected", [
    ("login failed password=hunter2 for ada", "login failed password=[REDACTED] for ada"),
    ("{'password': 'hunter2', 'user': 'ada'}", "{'password': '[REDACTED]', 'user': 'ada'}"),
    ('{"message": "x", "api_key": "k-123"}', '{"message": "x", "api_key": "[REDACTED]"}'),
    ("GET /crm?token=abc123&q=ada", "GET /crm?token=[REDACTED]&q=ada"),
    ("Authorization: Bearer eyJhbGciOi.abc.def", "Authorization: [REDACTED] [REDACTED]"),
    ("key mcp_abcdefgh_" + "A" * 43 + " used", "key [REDACTED] used"),
    ("user ada logged in", "user ada logged in"),
])
def test_scrub_text(line, expected):
    assert scrub_text(line) == expected


def test_json_log_lines_stay_valid_json():
    line = json.dumps({"message": "bad {'password': 'hunter2'}", "token": "abc"})
    assert json.loads(scrub_text(line)) == {"message": "bad {'password': '[REDACTED]'}", "token": "[REDACTED]"}


def test_redact_text_replaces_only_secret_values():
    arguments = {"user": "ada", "password": "hunter2", "pin": "1"}
    assert redact_text("ada sent 'hunter2'", arguments) == "ada sent '[REDACTED]'"
