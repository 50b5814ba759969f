"""Issue 12, first half: values the audit cannot store, the same events audited at every door, chunked
bodies, and tokens redacted by value. Each input named in the issue is kept here as a test.

The doors are spoken to over real sockets: a gunicorn process (REST pair, /mcp in both eras, /mcp/sse)
and ``manage.py mcp_stdio`` as a subprocess (tests/fuzz/hostile.py).
"""
from __future__ import annotations

import json
import os
import socket

import httpx
from oauth2_provider.models import Application
import pytest

from mcp_tools.models import AuditEvent, McpEndpoint, Tool
from mcp_tools.services.audit import REDACTED, audit_record, redact
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.lookup_cache import lookup_cache_bump
from tickets.models import Ticket

from ..fuzz import hostile
from ..helpers import LocalHttpServer, json_reply
from ..network_guard import no_external_network  # noqa: F401
from ..protocol_http.conftest import database_url_of_tests, start_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_external_network")]

DOORS = ["rest", "mcp-2025-11-25", "mcp-2026-07-28", "mcp-sse", "stdio"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        started = start_server(database_url_of_tests())
    yield started
    started.stop()


def _stdio_env():
    from django.conf import settings

    return {**os.environ, "DATABASE_URL": database_url_of_tests(), "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "mcp_project.settings", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(hostile.REPO)}


@pytest.fixture
def door(request, server, demo, demo_token):
    kind = request.param
    opened = {"rest": lambda: hostile.RestDoor(server.url, demo_token),
              "mcp-2025-11-25": lambda: hostile.HandshakeDoor(server.url, demo_token),
              "mcp-2026-07-28": lambda: hostile.StatelessDoor(server.url, demo_token),
              "mcp-sse": lambda: hostile.SseDoor(server.url, demo_token),
              "stdio": lambda: hostile.StdioDoor(_stdio_env(), demo_token)}[kind]()
    opened.kind = kind
    yield opened
    opened.close()


def call(door, name_text: str, arguments_text: str, method: str = "tools/call") -> hostile.Answer:
    """Send one call whose name and arguments are given as raw JSON text."""
    if door.kind == "rest":
        return door.exchange(f'{{"name":{name_text},"arguments":{arguments_text}}}')
    request_id = hostile.fresh_id()
    meta = f',"_meta":{json.dumps(hostile.STATELESS_META)}' if door.kind == "mcp-2026-07-28" else ""
    body = (f'{{"jsonrpc":"2.0","id":{request_id},"method":"{method}",'
            f'"params":{{"name":{name_text},"arguments":{arguments_text}{meta}}}}}')
    if door.kind == "mcp-2026-07-28":
        return door.exchange(body, request_id, name=json.loads(name_text))
    return door.exchange(body, request_id)


def assert_parse_refusal(door, answer: hostile.Answer, text: str):
    if door.kind == "rest":
        assert answer.status == 400, answer
        assert answer.messages[0]["error"].startswith("Malformed JSON body") and text in answer.messages[0]["error"]
        return
    assert answer.status in (None, 400), answer
    (error,) = [m["error"] for m in answer.messages if "error" in m and m.get("id") is None]
    assert error["code"] == -32700 and text in error["message"], error


# The inputs of the issue, and the rest of their kind: what Postgres text/jsonb cannot store, or what
# recursive code cannot walk. Each is refused at parse time, at every door, with the same reason.
UNSTORABLE = [
    ('{"x":1e400}', "the number 1e400 is too large (beyond a double)"),
    ('{"x":[1,-1e400]}', "the number -1e400 is too large"),
    ('{"x":NaN}', "NaN is not a JSON number"),
    ('{"x":100000000000000000000000}', "the integer 100000000000000000000000 is outside the signed 64-bit range"),
    ('{"x":-9223372036854775809}', "outside the signed 64-bit range"),
    ('{"x":"a\\u0000b"}', "arguments.x holds a NUL character"),
    ('{"a\\u0000":1}', "arguments holds a NUL character"),
    ('{"x":"\\ud800"}', "arguments.x holds an unpaired surrogate (\\ud800)"),
    ('{"x":"\\udc00\\ud800"}', "unpaired surrogate"),
    ('{"x":1,"x":2}', "the member name 'x' appears twice"),
    ('{"x":' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64 levels"),
    ('{"x":' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 64 levels"),
]


def check_unstorable_arguments_are_refused_at_parse_time(door):
    for arguments, reason in UNSTORABLE:
        answer = call(door, '"echo"', arguments)
        assert_parse_refusal(door, answer, reason)
    assert AuditEvent.objects.count() == 0


def check_arguments_that_are_not_an_object_are_a_malformed_request(door):
    answer = call(door, '"echo"', "[1]")
    assert answer.answered_calls == 0
    if door.kind == "rest":
        assert answer.status == 400 and answer.messages[0]["error"] == "Tool arguments must be a JSON object."
    else:
        assert [m["error"]["code"] for m in answer.messages if "error" in m] == [-32602]
    assert AuditEvent.objects.count() == 0


def check_every_outcome_is_audited_unknown_tools_included(door):
    transport = {"rest": "rest", "mcp-sse": "mcp-sse", "stdio": "stdio"}.get(door.kind, "mcp")
    answers = [
        call(door, '"no_such_tool"', "{}"),  # unknown
        call(door, '"create_ticket"', '{"title":5}'),  # invalid arguments
        call(door, '"echo"', '{"text":"hi"}'),  # ok
    ]
    assert [a.answered_calls for a in answers] == [1, 1, 1], answers
    rows = list(AuditEvent.objects.order_by("pk").values_list("tool_name", "outcome", "error_code", "transport"))
    assert rows == [("no_such_tool", "invalid", "unknown_tool", transport),
                    ("create_ticket", "invalid", "invalid_arguments", transport),
                    ("echo", "ok", "", transport)]


def check_what_every_door_still_accepts(door):
    """The limits refuse no everyday input: edge values, a valid surrogate pair, nesting at the limit."""
    nested = "[" * 60 + "]" * 60
    arguments = (f'{{"big":{2**63 - 1},"small":{-(2**63)},"tiny":1e-400,"float":1.5e300,'
                 f'"emoji":"\\ud83d\\ude00","nested":{nested},"text":"tab\\tnew\\nline"}}')
    before = AuditEvent.objects.count()
    answer = call(door, '"echo"', arguments)
    assert answer.answered_calls == 1, answer
    row = AuditEvent.objects.order_by("pk").last()
    assert AuditEvent.objects.count() == before + 1
    assert row.outcome == "ok" and row.arguments["big"] == 2**63 - 1 and row.arguments["emoji"] == "😀"


def check_task_lookups_and_meta_refuse_unstorable_values_too(door):
    """Values the server stores outside the audit log (session rows, task lookups) pass the same parser."""
    request_id = hostile.fresh_id()
    answer = door.exchange(f'{{"jsonrpc":"2.0","id":{request_id},"method":"tasks/get",'
                           f'"params":{{"taskId":"t\\u0000"}}}}', request_id)
    assert_parse_refusal(door, answer, "text at params.taskId holds a NUL character")
    request_id = hostile.fresh_id()
    answer = door.exchange(f'{{"jsonrpc":"2.0","id":{request_id},"method":"ping","params":{{"_meta":{{"x":1e999}}}}}}',
                           request_id)
    assert_parse_refusal(door, answer, "the number 1e999 is too large")


@pytest.mark.parametrize("door", DOORS, indirect=True)
def test_every_door_parses_and_audits_alike(door):
    """One door opened for every check (a stdio process costs seconds to start); the checks run in order."""
    check_unstorable_arguments_are_refused_at_parse_time(door)
    check_arguments_that_are_not_an_object_are_a_malformed_request(door)
    check_every_outcome_is_audited_unknown_tools_included(door)
    check_what_every_door_still_accepts(door)
    if door.kind != "rest":
        check_task_lookups_and_meta_refuse_unstorable_values_too(door)


def test_1e400_to_an_http_request_tool_never_reaches_upstream(server, demo, demo_token):
    """The issue's case: the upstream request had already happened when the audit insert failed."""
    with LocalHttpServer(lambda *request: json_reply(200, {"ok": True})) as upstream:
        Tool.objects.create(name="forward", description="forward", kind="http_request",
                            input_schema={"type": "object"},
                            config={"base_url": upstream.url, "method": "POST", "allowed_hosts": ["127.0.0.1"]})
        rest = hostile.RestDoor(server.url, demo_token)
        try:
            refused = rest.exchange('{"name":"forward","arguments":{"x":1e400}}')
            accepted = rest.exchange('{"name":"forward","arguments":{"x":1e300}}')
        finally:
            rest.close()
    assert refused.status == 400 and "1e400 is too large" in refused.messages[0]["error"]
    assert accepted.status == 200, accepted
    assert len(upstream.requests) == 1 and json.loads(upstream.requests[0]["body"]) == {"x": 1e300}
    assert list(AuditEvent.objects.values_list("tool_name", "outcome")) == [("forward", "ok")]


def test_an_initialize_with_unstorable_client_info_is_a_parse_error(server, demo, demo_token):
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {demo_token}",
                                                    "Accept": "application/json, text/event-stream"}) as client:
        for info in ('{"name":"a\\u0000","version":"1"}', '{"name":"\\udfff","version":"1"}',
                     '{"name":"x","version":1e400}', '{"name":"x","name":"y","version":"1"}'):
            response = client.post("/mcp", content=(
                '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
                f'"capabilities":{{}},"clientInfo":{info}}}}}').encode(), headers={"Content-Type": "application/json"})
            assert response.status_code == 400 and response.json()["error"]["code"] == -32700, response.text
        long_name = client.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "n" * 10_000, "version": "1"}}})
        assert long_name.status_code == 200 and long_name.headers["Mcp-Session-Id"]


# --- the same events audited at every door (see test_every_door_parses_and_audits_alike) ------------------

def test_a_tool_outside_an_endpoint_is_audited_as_denied_and_never_runs(server, demo, demo_token):
    endpoint = McpEndpoint.objects.create(slug="narrow", name="narrow")
    endpoint.tools.set([demo["echo"]])
    lookup_cache_bump()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {demo_token}",
                                                    "Accept": "application/json, text/event-stream",
                                                    "MCP-Protocol-Version": "2026-07-28"}) as client:
        response = client.post("/mcp/narrow", headers={"Mcp-Method": "tools/call", "Mcp-Name": "create_ticket"}, json={
            "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "create_ticket", "arguments": {"title": "t", "description": "d"},
                "_meta": hostile.STATELESS_META}})
    assert response.json()["error"]["message"] == "Unknown tool: create_ticket"
    assert not Ticket.objects.exists()
    row = AuditEvent.objects.get()
    assert (row.tool_name, row.outcome, row.error_code) == ("create_ticket", "denied", "not_permitted")


# --- chunked request bodies ----------------------------------------------------------------------------------

def _chunked_post(url: str, path: str, token: str, body: bytes, chunk: int = 1000, headers: str = "") -> tuple[int, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length) over a raw socket."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection(("127.0.0.1", int(port)), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{headers}"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        for start in range(0, len(body), chunk):
            part = body[start:start + chunk]
            try:
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the server answered 413 and closed
                break
        else:
            sock.sendall(b"0\r\n\r\n")
        data = b""
        while True:
            try:
                received = sock.recv(65536)
            except ConnectionResetError:
                break
            if not received:
                break
            data += received
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_chunked_bodies_are_read_at_every_http_door(server, demo, demo_token):
    status, payload = _chunked_post(server.url, "/mcp/v1/tools/invoke", demo_token,
                                    json.dumps({"name": "echo", "arguments": {"text": "x" * 5000}}).encode())
    assert status == 200 and json.loads(payload)["result"] == {"echo": {"text": "x" * 5000}}, payload

    status, payload = _chunked_post(server.url, "/mcp", demo_token, json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "chunked"}, "_meta": hostile.STATELESS_META}}).encode(),
        headers="MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n")
    assert status == 200 and b"chunked" in payload and b'"error"' not in payload, payload

    sse = hostile.SseDoor(server.url, demo_token)
    try:
        status, _ = _chunked_post(server.url, sse.endpoint, demo_token, json.dumps(
            {"jsonrpc": "2.0", "id": "c", "method": "tools/call",
             "params": {"name": "echo", "arguments": {"text": "over sse"}}}).encode())
        assert status == 202
        (answer,) = [m for m in sse._until_id("c") if m.get("id") == "c"]
    finally:
        sse.close()
    assert "over sse" in json.dumps(answer["result"])
    assert AuditEvent.objects.filter(outcome="ok").count() == 3


@pytest.mark.parametrize("path", ["/mcp/v1/tools/invoke", "/mcp"])
def test_a_chunked_body_over_the_limit_is_a_413(server, demo, demo_token, settings, path):
    body = b'{"name":"echo","arguments":{"text":"' + b"x" * settings.MCP_MAX_BODY_BYTES + b'"}}'
    status, _ = _chunked_post(server.url, path, demo_token, body, chunk=65536)
    assert status == 413
    assert AuditEvent.objects.count() == 0


# --- tokens redacted by value ---------------------------------------------------------------------------------

def test_redact_makes_any_value_storable_without_recursion():
    deep: list = []
    inner = deep
    for _ in range(100_000):  # far beyond the recursion limit
        inner.append([])
        inner = inner[0]
    value = {"inf": float("inf"), "nan": float("nan"), "huge": 2**200, "nul\x00key": "a\x00b", "lone": "\ud800x",
             "deep": deep, "token": "kept out", "other": object()}
    stored = redact(value)
    json.dumps(stored, allow_nan=False)  # what jsonb needs
    assert stored["inf"] == "inf" and stored["huge"] == "[integer of 201 bits]"
    assert stored["nul\ufffdkey"] == "a\ufffdb" and stored["lone"] == "\ufffdx" and stored["token"] == REDACTED
    assert "[nested too deep]" in json.dumps(stored)


def test_the_audit_write_cannot_fail_on_what_a_caller_passes(demo):
    """Callers that bypass the parser (the admin, a worker) still write their row."""
    caller = Caller(user=None, token=None, transport="admin")
    event = audit_record(tool=None, tool_name="x\x00y", caller=caller, outcome="invalid",
                         arguments={"x": float("inf"), "y": "\x00", "z": 10**30}, error_message="bad \x00 \ud800",
                         duration_ms=1.0, request_id="r")
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.tool_name == "x\ufffdy" and stored.arguments == {"x": "inf", "y": "\ufffd", "z": "[integer of 100 bits]"}


def test_a_pasted_api_token_is_redacted_in_the_ticket_and_the_audit_row(api, demo, demo_token, issue_token):
    pasted = issue_token(name="pasted", all_tools=True).secret
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"}, json={
        "name": "create_ticket", "arguments": {"title": "Login broken",
                                               "description": f"my key is {pasted}, and it fails"}})
    assert response.status_code == 200, response.text
    ticket = Ticket.objects.get()
    assert ticket.description == f"my key is {REDACTED}, and it fails"
    assert pasted not in response.text
    row = AuditEvent.objects.get()
    assert row.arguments["description"] == f"my key is {REDACTED}, and it fails"
    assert pasted not in json.dumps(row.arguments) and pasted.split("_")[2] not in json.dumps(row.arguments)


@pytest.mark.parametrize("spelling", [
    lambda token: token.upper(),
    lambda token: token.replace("_", "%5F"),
    lambda token: token.replace("_", "%5f", 1),
])
def test_a_pasted_api_token_is_redacted_in_other_spellings_too(api, demo, demo_token, issue_token, spelling):
    pasted = spelling(issue_token(name="pasted", all_tools=True).secret)
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"}, json={
        "name": "create_ticket", "arguments": {"title": "Login broken", "description": f"key: {pasted}"}})
    assert response.status_code == 200, response.text
    assert Ticket.objects.get().description == f"key: {REDACTED}"
    assert AuditEvent.objects.get().arguments["description"] == f"key: {REDACTED}"


def test_a_pasted_oauth_token_is_redacted_by_value(api, live_server, demo, demo_token):
    app = Application.objects.create(name="agent", client_type=Application.CLIENT_CONFIDENTIAL,
                                     authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
                                     client_secret="s" * 40, hash_client_secret=False)
    issued = api.post("/o/token/", data={"grant_type": "client_credentials", "client_id": app.client_id,
                                         "client_secret": "s" * 40, "scope": "tool:echo",
                                         "resource": f"{live_server.url}/mcp"})
    assert issued.status_code == 200, issued.text
    access = issued.json()["access_token"]
    assert access.startswith("mcpoa_")
    # The issued token works (the new shape changes nothing for clients), and pasted it is redacted.
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {access}"}, json={
        "name": "echo", "arguments": {"note": f"token={access}"}})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"echo": {"note": f"token={REDACTED}"}}
    assert access not in json.dumps(AuditEvent.objects.get().arguments)


def test_ordinary_text_is_not_redacted(api, demo, demo_token):
    text = "mcp_ is our prefix; mcp_abc_def is too short; mcpoa_short; a 30-char word abcdefghij0123456789ABCDEFGHIJ"
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"},
                        json={"name": "echo", "arguments": {"text": text}})
    assert response.json()["result"] == {"echo": {"text": text}}


def test_a_tool_whose_arguments_cannot_be_stored_does_not_run(demo, issue_token, monkeypatch):
    """Should the storable copy ever fail, the row is still written and the tool is not run."""
    import mcp_tools.services.audit as audit

    def unstorable(*args, **kwargs):
        raise ValueError("cannot be stored")

    monkeypatch.setattr(audit, "redact", unstorable)
    caller = Caller(token=issue_token(all_tools=True).token, transport="rest")
    invocation = tool_invoke(name="create_ticket", arguments={"title": "t", "description": "d"}, caller=caller)
    assert invocation.error_code == "invalid_arguments" and "nothing was run" in invocation.message
    assert not Ticket.objects.exists()
    row = AuditEvent.objects.get()
    assert (row.outcome, row.arguments) == ("invalid", {"_unstorable": True})
