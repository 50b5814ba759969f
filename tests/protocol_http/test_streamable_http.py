"""Streamable HTTP against a real gunicorn server: error paths, sessions, confirmation, admin endpoints."""
from __future__ import annotations

import json

import httpx
import pytest

from mcp_tools.models import AuditEvent, McpEndpoint, McpSession, Prompt, Tool
from tickets.models import Ticket

from .helpers import ACCEPT_BOTH, McpHttp, rpc
from mcp_tools.services.lookup_cache import lookup_cache_bump


@pytest.fixture
def mcp(mcp_server, demo, demo_token):
    client = McpHttp(f"{mcp_server.url}/mcp", demo_token)
    yield client
    client.close()


def _error(messages, code):
    (message,) = messages
    assert message["error"]["code"] == code, message
    return message["error"]


# --- authentication, Origin, size, content negotiation ---------------------------------------------

def test_it_requires_a_token_and_says_how(mcp_server, demo):
    response = httpx.post(f"{mcp_server.url}/mcp", json=rpc("ping"), headers={"Accept": ACCEPT_BOTH})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="mcp"')
    assert response.json()["error"]["code"] == -32600


def test_it_rejects_an_invalid_token(mcp_server, demo):
    response = httpx.post(f"{mcp_server.url}/mcp", json=rpc("ping"),
                          headers={"Accept": ACCEPT_BOTH, "Authorization": "Bearer mcp_nope_" + "x" * 30})
    assert response.status_code == 401


def test_it_rejects_a_foreign_origin_with_403(mcp):
    response = mcp.post_raw(json.dumps(rpc("ping")), {"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert mcp.post_raw(json.dumps(rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                                      "clientInfo": {"name": "t", "version": "1"}})),
                        {"Origin": "http://localhost:5173"}).status_code == 200


def test_it_rejects_a_foreign_host(mcp):
    assert mcp.post_raw(json.dumps(rpc("ping")), {"Host": "evil.example"}).status_code == 400


def test_it_limits_the_body_size_with_413(mcp, settings):
    big = json.dumps(rpc("tools/call", {"name": "echo", "arguments": {"x": "a" * 1_100_000}}))
    assert mcp.post_raw(big).status_code == 413


def test_it_wants_json_content_type(mcp):
    assert mcp.post_raw(json.dumps(rpc("ping")), {"Content-Type": "text/plain"}).status_code == 415


def test_it_answers_406_when_neither_json_nor_sse_is_acceptable(mcp):
    assert mcp.post_raw(json.dumps(rpc("ping")), {"Accept": "text/html"}).status_code == 406


# --- JSON-RPC errors -------------------------------------------------------------------------------

def test_malformed_json_is_a_parse_error(mcp):
    response = mcp.post_raw(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_deeply_nested_json_is_a_parse_error_not_a_crash(mcp):
    response = mcp.post_raw(b"[" * 50_000 + b"]" * 50_000)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_an_invalid_request_is_minus_32600(mcp):
    response, messages = mcp.post({"jsonrpc": "1.0", "id": 3, "method": "ping"})
    assert response.status_code == 400
    assert _error(messages, -32600)


def test_batch_arrays_are_rejected(mcp):
    response = mcp.post_raw(json.dumps([rpc("ping"), rpc("ping")]))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32600 and "batch" in error["message"]


def test_unknown_method_is_minus_32601_in_both_eras(mcp):
    mcp.initialize()
    response, messages = mcp.post(rpc("no/such/method"))
    assert response.status_code == 200 and _error(messages, -32601)
    mcp.session_id = None
    response, messages = mcp.stateless("no/such/method")
    assert response.status_code == 404 and _error(messages, -32601)


def test_bad_params_are_minus_32602(mcp):
    mcp.initialize()
    response, messages = mcp.post(rpc("tools/call", {"arguments": {}}))
    assert _error(messages, -32602)
    response, messages = mcp.post(rpc("prompts/get", {"name": "triage_ticket", "arguments": {}}))
    assert "message" in _error(messages, -32602)["message"]
    response, messages = mcp.post(rpc("tools/list", {"cursor": "forged"}))
    assert _error(messages, -32602)


def test_an_unknown_or_forbidden_tool_is_a_protocol_error(mcp, issue_token, demo):
    mcp.initialize()
    response, messages = mcp.post(rpc("tools/call", {"name": "no_such_tool", "arguments": {}}))
    assert _error(messages, -32602)
    narrow = issue_token(name="narrow", tools=[demo["echo"]]).secret
    other = McpHttp(mcp.url, narrow)
    try:
        other.initialize()
        response, messages = other.post(rpc("tools/list"))
        assert [t["name"] for t in messages[0]["result"]["tools"]] == ["echo"]
        response, messages = other.post(rpc("tools/call", {"name": "create_ticket", "arguments": {
            "title": "x", "description": "y"}}))
        assert _error(messages, -32602)
    finally:
        other.close()
    assert not Ticket.objects.exists()


# --- sessions --------------------------------------------------------------------------------------

def test_sessions_are_required_after_initialize_and_end_with_delete(mcp):
    response, messages = mcp.post(rpc("tools/list"))  # no session, handshake era
    assert response.status_code == 400 and _error(messages, -32600)
    session_id = mcp.initialize()
    assert McpSession.objects.filter(pk=session_id, ended_at__isnull=True).exists()
    response, _ = mcp.post(rpc("ping"))
    assert response.status_code == 200
    assert mcp.http.delete(mcp.url, headers=mcp._headers()).status_code == 204
    response, messages = mcp.post(rpc("ping"))
    assert response.status_code == 404
    assert mcp.http.delete(mcp.url, headers=mcp._headers()).status_code == 404
    mcp.session_id = "made-up-session-id"
    assert mcp.post(rpc("ping"))[0].status_code == 404


def test_a_session_belongs_to_the_token_that_opened_it(mcp, issue_token):
    session_id = mcp.initialize()
    thief = McpHttp(mcp.url, issue_token(name="thief", all_tools=True).secret)
    try:
        thief.session_id = session_id
        assert thief.post(rpc("ping"))[0].status_code == 404
    finally:
        thief.close()


def test_the_protocol_version_header_is_checked(mcp):
    mcp.initialize()
    response = mcp.post_raw(json.dumps(rpc("ping")), {"MCP-Protocol-Version": "1999-01-01"})
    assert response.status_code == 400


def test_get_and_delete_answer_405_where_the_spec_allows(mcp):
    # Handshake era: GET opens a session's stream (tests/protocol_http/test_listen.py), so it needs the session.
    assert mcp.http.get(mcp.url, headers=mcp._headers({"Accept": "text/event-stream"})).status_code == 400
    assert mcp.http.get(mcp.url, headers=mcp._headers({"Accept": "application/json"})).status_code == 405
    stateless = {"MCP-Protocol-Version": "2026-07-28"}
    assert mcp.http.get(mcp.url, headers=mcp._headers(stateless)).status_code == 405
    assert mcp.http.delete(mcp.url, headers=mcp._headers(stateless)).status_code == 405
    assert mcp.http.delete(mcp.url, headers=mcp._headers()).status_code == 400  # handshake, no session id


def test_a_handshake_call_that_sends_nothing_early_is_answered_as_json(mcp):
    """Streams cost a pool thread: only calls that may speak before their result get one."""
    mcp.initialize()
    quiet, _ = mcp.post(rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}))
    assert quiet.headers["content-type"].startswith("application/json")
    with_token, messages = mcp.post(rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"},
                                                       "_meta": {"progressToken": "p"}}))
    assert with_token.status_code == 200 and "result" in messages[-1]  # may stream; answers either way


def test_notifications_and_client_responses_are_accepted_with_202(mcp):
    mcp.initialize()
    assert mcp.post(rpc("notifications/cancelled", {"requestId": 99}, id=None))[0].status_code == 202
    assert mcp.post({"jsonrpc": "2.0", "id": "srv-unknown", "result": {}})[0].status_code == 202


# --- resources, prompts, completion on the product's data -----------------------------------------

def test_resources_prompts_and_completion(mcp):
    Prompt.objects.filter(name="triage_ticket").update(arguments=[
        {"name": "message", "description": "The customer's message", "required": True},
        {"name": "priority", "description": "Priority", "enum": ["low", "medium", "high", "urgent"]}],
        template="Triage ({priority}): {message} {unknown}")
    mcp.initialize()
    _, (listed,) = mcp.post(rpc("resources/list"))
    uri = listed["result"]["resources"][0]["uri"]
    _, (read,) = mcp.post(rpc("resources/read", {"uri": uri}))
    assert "Escalation" in read["result"]["contents"][0]["text"]
    _, messages = mcp.post(rpc("resources/read", {"uri": "docs://nope"}))
    assert _error(messages, -32002)
    _, (got,) = mcp.post(rpc("prompts/get", {"name": "triage_ticket",
                                             "arguments": {"message": "{priority} help!", "priority": "high"}}))
    assert got["result"]["messages"][0]["content"]["text"] == "Triage (high): {priority} help! {unknown}"
    _, (done,) = mcp.post(rpc("completion/complete", {"ref": {"type": "ref/prompt", "name": "triage_ticket"},
                                                      "argument": {"name": "priority", "value": "h"}}))
    assert done["result"]["completion"]["values"] == ["high"]


# --- requires_confirmation: the user is asked, the answer is audited -------------------------------

def _sse_events(lines):
    data = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield json.loads("\n".join(data))
            data = []


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_a_tool_that_requires_confirmation_asks_first_handshake_era(mcp, demo, answer):
    Tool.objects.filter(name="create_ticket").update(requires_confirmation=True)
    lookup_cache_bump()  # QuerySet.update() sends no signal
    mcp.initialize(capabilities={"elicitation": {}})
    call = rpc("tools/call", {"name": "create_ticket", "arguments": {"title": "Confirm me", "description": "d"}})
    with mcp.http.stream("POST", mcp.url, content=json.dumps(call), headers=mcp._headers()) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(stream.iter_lines())
        ask = next(events)
        assert ask["method"] == "elicitation/create" and "Confirm me" in ask["params"]["message"]
        reply = {"action": "accept", "content": {"confirm": True}} if answer == "accept" else {"action": "decline"}
        assert mcp.post({"jsonrpc": "2.0", "id": ask["id"], "result": reply})[0].status_code == 202
        final = next(events)
    assert final["id"] == call["id"]
    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert event.confirmation == answer
    if answer == "accept":
        assert final["result"].get("isError") is not True
        assert event.outcome == "ok" and Ticket.objects.filter(title="Confirm me").exists()
    else:
        assert final["result"]["isError"] is True
        assert event.outcome == "denied" and not Ticket.objects.exists()


def test_a_tool_that_requires_confirmation_is_refused_when_the_client_cannot_ask(mcp, demo):
    Tool.objects.filter(name="create_ticket").update(requires_confirmation=True)
    lookup_cache_bump()  # QuerySet.update() sends no signal
    mcp.initialize(capabilities={})  # no elicitation
    _, (reply,) = mcp.post(rpc("tools/call", {"name": "create_ticket", "arguments": {"title": "t", "description": "d"}}))
    assert reply["result"]["isError"] is True and "did not confirm" in reply["result"]["content"][0]["text"]
    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert (event.outcome, event.confirmation) == ("denied", "unsupported")
    assert not Ticket.objects.exists()


def test_a_tool_that_requires_confirmation_asks_first_stateless_era(mcp, demo):
    Tool.objects.filter(name="create_ticket").update(requires_confirmation=True)
    lookup_cache_bump()  # QuerySet.update() sends no signal
    caps = {"elicitation": {}}
    args = {"title": "Stateless confirm", "description": "d"}
    _, (first,) = mcp.stateless("tools/call", {"name": "create_ticket", "arguments": args}, name="create_ticket",
                                capabilities=caps)
    assert first["result"]["resultType"] == "input_required"
    state = first["result"]["requestState"]
    yes = {"confirm": {"action": "accept", "content": {"confirm": True}}}
    # The confirmation is bound to the arguments it was given for.
    _, (swapped,) = mcp.stateless("tools/call", {"name": "create_ticket", "arguments": {**args, "title": "Other"},
                                                 "inputResponses": yes, "requestState": state},
                                  name="create_ticket", capabilities=caps)
    assert swapped["result"]["resultType"] == "input_required"
    _, (done,) = mcp.stateless("tools/call", {"name": "create_ticket", "arguments": args, "inputResponses": yes,
                                              "requestState": state}, name="create_ticket", capabilities=caps)
    assert done["result"]["resultType"] == "complete" and done["result"].get("isError") is not True
    assert Ticket.objects.filter(title="Stateless confirm").count() == 1
    assert AuditEvent.objects.get(tool_name="create_ticket").confirmation == "accept"
    _, (tampered,) = mcp.stateless("tools/call", {"name": "create_ticket", "arguments": args, "inputResponses": yes,
                                                  "requestState": state + "x"}, name="create_ticket",
                                   capabilities=caps)
    assert tampered["error"]["code"] == -32602


def test_progress_notifications_stream_as_sse(mcp_server):
    client = McpHttp(f"{mcp_server.url}/mcp/conformance")
    try:
        client.initialize()
        response, messages = client.post(rpc("tools/call", {"name": "test_tool_with_progress", "arguments": {},
                                                            "_meta": {"progressToken": "p1"}}))
        assert response.headers["content-type"].startswith("text/event-stream")
        assert [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"] == \
            [0, 50, 100]
        assert messages[-1]["result"]["content"][0]["text"] == "Progress tool executed"
    finally:
        client.close()


# --- admin-defined endpoints ----------------------------------------------------------------------

def test_an_admin_endpoint_serves_its_own_tool_set(mcp_server, demo, demo_token):
    endpoint = McpEndpoint.objects.create(slug="support", name="Support", instructions="Support desk tools.")
    endpoint.tools.set([demo["create_ticket"], demo["get_ticket"]])
    client = McpHttp(f"{mcp_server.url}/mcp/support", demo_token)
    try:
        client.initialize()
        _, (listed,) = client.post(rpc("tools/list"))
        names = [t["name"] for t in listed["result"]["tools"]]
        if "nextCursor" in listed["result"]:
            _, (more,) = client.post(rpc("tools/list", {"cursor": listed["result"]["nextCursor"]}))
            names += [t["name"] for t in more["result"]["tools"]]
        assert names == ["create_ticket", "get_ticket"]
        _, messages = client.post(rpc("tools/call", {"name": "echo", "arguments": {}}))
        assert _error(messages, -32602)
    finally:
        client.close()
    assert httpx.post(f"{mcp_server.url}/mcp/nowhere", json=rpc("ping"),
                      headers={"Authorization": f"Bearer {demo_token}"}).status_code == 404


def test_a_public_endpoint_serves_only_its_listed_tools_without_a_token(mcp_server, demo):
    endpoint = McpEndpoint.objects.create(slug="public", name="Public", requires_auth=False)
    endpoint.tools.set([demo["echo"]])
    client = McpHttp(f"{mcp_server.url}/mcp/public")
    try:
        client.initialize()
        _, (listed,) = client.post(rpc("tools/list"))
        assert [t["name"] for t in listed["result"]["tools"]] == ["echo"]
        _, (called,) = client.post(rpc("tools/call", {"name": "echo", "arguments": {"message": "hi"}}))
        assert called["result"].get("isError") is not True
    finally:
        client.close()


def test_the_conformance_endpoint_is_off_unless_enabled(mcp_server, demo_token):
    from django.test import override_settings

    from mcp_tools.transports.mcp_backend import get_conformance_dispatcher

    with override_settings(MCP_CONFORMANCE_FIXTURES=False):
        assert get_conformance_dispatcher() is None
