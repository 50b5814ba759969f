"""The HTTP+SSE wire (MCP 2024-11-05) spoken by hand against real gunicorn processes."""
import json
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from mcp_tools.models import AuditEvent, McpEndpoint
from mcp_tools.services.tokens import token_revoke
from tickets.models import Ticket

from ..helpers import wait_until
from .sse_reader import open_stream

pytestmark = pytest.mark.django_db(transaction=True)

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                         "clientInfo": {"name": "hand", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def post(base_url, endpoint, message, headers):
    return httpx.post(base_url + endpoint, json=message, headers=headers, timeout=30)


def handshake(base_url, endpoint, stream, headers):
    assert post(base_url, endpoint, INITIALIZE, headers).status_code == 202
    reply = stream.next_message()
    assert post(base_url, endpoint, INITIALIZED, headers).status_code == 202
    return reply


def test_it_sends_the_endpoint_event_first(server_a, all_tools_token):
    with open_stream(server_a.url, headers=bearer(all_tools_token)) as (response, stream):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in response.headers["cache-control"]
        first = stream.next()
        assert first.event == "endpoint"
        url = urlparse(first.data)
        assert url.path == "/mcp/messages" and not url.netloc
        assert len(parse_qs(url.query)["session_id"][0]) == 32


def test_a_request_is_answered_202_and_its_response_arrives_on_the_stream(server_a, all_tools_token):
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        reply = handshake(server_a.url, endpoint, stream, headers)
        assert reply["id"] == 1
        assert reply["result"]["protocolVersion"] == "2025-03-26"
        assert "tools" in reply["result"]["capabilities"]

        answer = post(server_a.url, endpoint, {"jsonrpc": "2.0", "id": "t", "method": "tools/list"}, headers)
        assert answer.status_code == 202 and answer.content == b""
        listed = stream.next_message()
        assert listed["id"] == "t"
        assert "create_ticket" in [tool["name"] for tool in listed["result"]["tools"]]


def test_tool_calls_run_through_the_pipeline_and_are_audited(server_a, all_tools_token):
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        handshake(server_a.url, endpoint, stream, headers)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "create_ticket",
                           "arguments": {"title": "Printer on fire", "description": "3rd floor", "priority": "high"}}}
        assert post(server_a.url, endpoint, call, headers).status_code == 202
        result = stream.next_message()["result"]
    assert result.get("isError") is not True
    ticket = Ticket.objects.get(title="Printer on fire")
    # 2025-03-26 has no structuredContent: the ticket arrives as JSON text.
    assert "structuredContent" not in result
    assert json.loads(result["content"][0]["text"])["id"] == ticket.pk
    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert (event.outcome, event.transport, event.protocol_version) == ("ok", "mcp-sse", "2025-03-26")


def test_the_stream_and_the_posts_may_be_served_by_different_processes(server_a, server_b, all_tools_token):
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        reply = handshake(server_b.url, endpoint, stream, headers)  # every POST goes to the other process
        assert reply["result"]["serverInfo"]["name"]
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "across processes"}}}
        assert post(server_b.url, endpoint, call, headers).status_code == 202
        result = stream.next_message()["result"]
    assert "across processes" in result["content"][0]["text"]


def test_an_idle_stream_gets_keep_alive_comments(server_a, all_tools_token):
    with open_stream(server_a.url, headers=bearer(all_tools_token), read_timeout=5) as (response, stream):
        stream.next()  # endpoint
        assert stream.next().comment == "ping"


def test_no_credential_is_refused_on_the_stream(server_a, tools):
    with open_stream(server_a.url) as (response, stream):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_token_is_refused_on_the_stream(server_a, tools):
    with open_stream(server_a.url, headers=bearer("mcp_abcdefgh_" + "x" * 40)) as (response, stream):
        assert response.status_code == 401


def test_the_api_key_header_works_too(server_a, all_tools_token):
    headers = {"X-API-Key": all_tools_token}
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        assert handshake(server_a.url, endpoint, stream, headers)["id"] == 1


def test_posts_need_the_credential_that_opened_the_stream(server_a, all_tools_token, echo_only_token):
    with open_stream(server_a.url, headers=bearer(all_tools_token)) as (response, stream):
        endpoint = stream.next_event().data
        assert post(server_a.url, endpoint, INITIALIZE, {}).status_code == 401
        assert post(server_a.url, endpoint, INITIALIZE, bearer(echo_only_token)).status_code == 404
        assert post(server_a.url, endpoint, INITIALIZE, bearer(all_tools_token)).status_code == 202


def test_unknown_and_ended_sessions_answer_404(server_a, all_tools_token):
    headers = bearer(all_tools_token)
    assert post(server_a.url, "/mcp/messages?session_id=" + "0" * 32, INITIALIZE, headers).status_code == 404
    assert post(server_a.url, "/mcp/messages", INITIALIZE, headers).status_code == 404
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        assert post(server_a.url, endpoint, INITIALIZE, headers).status_code == 202
    # The client closed the stream: the server notices at its next write (a keep-alive at the latest).
    wait_until(lambda: post(server_a.url, endpoint, INITIALIZE, headers).status_code == 404, timeout=10)


def test_a_revoked_token_ends_the_stream(server_a, issue_token, tools):
    issued = issue_token(name="soon-revoked", all_tools=True)
    with open_stream(server_a.url, headers=bearer(issued.secret)) as (response, stream):
        stream.next()  # endpoint
        token_revoke(token=issued.token)
        with pytest.raises(EOFError):
            while True:
                stream.next()


def test_a_foreign_origin_is_refused(server_a, all_tools_token):
    headers = {**bearer(all_tools_token), "Origin": "http://evil.example"}
    with open_stream(server_a.url, headers=headers) as (response, stream):
        assert response.status_code == 403


def test_messages_must_be_json(server_a, all_tools_token):
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        wrong_type = httpx.post(server_a.url + endpoint, content=b"{}", timeout=10,
                                headers={**headers, "Content-Type": "text/plain"})
        assert wrong_type.status_code == 415
        garbage = httpx.post(server_a.url + endpoint, content=b"{not json", timeout=10,
                             headers={**headers, "Content-Type": "application/json"})
        assert garbage.status_code == 400
        assert garbage.json()["error"]["code"] == -32700


def test_requests_before_initialize_are_refused_on_the_stream(server_a, all_tools_token):
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        assert post(server_a.url, endpoint, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
                    headers).status_code == 202
        reply = stream.next_message()
        assert reply["id"] == 9 and reply["error"]["code"] == -32600


def test_an_admin_defined_endpoint_has_its_own_stream_with_its_own_tools(server_a, tools, all_tools_token):
    endpoint = McpEndpoint.objects.create(slug="support", name="Support desk")
    endpoint.tools.set([tools["create_ticket"]])
    headers = bearer(all_tools_token)
    with open_stream(server_a.url, "/mcp/support/sse", headers=headers) as (response, stream):
        endpoint_url = stream.next_event().data
        assert endpoint_url.startswith("/mcp/support/messages?session_id=")
        handshake(server_a.url, endpoint_url, stream, headers)
        post(server_a.url, endpoint_url, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, headers)
        assert [t["name"] for t in stream.next_message()["result"]["tools"]] == ["create_ticket"]
        # The session belongs to /mcp/support: the default endpoint's message URL does not know it.
        other = "/mcp/messages?" + endpoint_url.split("?", 1)[1]
        assert post(server_a.url, other, INITIALIZE, headers).status_code == 404


def test_an_unknown_or_disabled_endpoint_is_404(server_a, tools, all_tools_token):
    McpEndpoint.objects.create(slug="closed", name="Closed", enabled=False, all_tools=True)
    for path in ("/mcp/nothing-here/sse", "/mcp/closed/sse"):
        with open_stream(server_a.url, path, headers=bearer(all_tools_token)) as (response, stream):
            assert response.status_code == 404


@pytest.mark.parametrize("asked, offered", [("2024-11-05", "2024-11-05"), ("2024-10-07", "2025-11-25")])
def test_http_sse_negotiates_2024_11_05_the_revision_that_defined_it(server_a, all_tools_token, asked, offered):
    # Changed deliberately: this door used to offer 2025-11-25 to a 2024-11-05 client, which then disconnected.
    headers = bearer(all_tools_token)
    old = {**INITIALIZE, "params": {**INITIALIZE["params"], "protocolVersion": asked}}
    with open_stream(server_a.url, headers=headers) as (response, stream):
        endpoint = stream.next_event().data
        assert post(server_a.url, endpoint, old, headers).status_code == 202
        assert stream.next_message()["result"]["protocolVersion"] == offered


def test_an_allowed_browser_origin_may_open_the_stream(server_a, all_tools_token):
    headers = {**bearer(all_tools_token), "Origin": "http://localhost:3000"}
    with open_stream(server_a.url, headers=headers) as (response, stream):
        assert response.status_code == 200


def test_without_redis_the_transport_answers_503_and_points_to_mcp(client, all_tools_token, settings):
    settings.REDIS_URL = ""
    response = client.get("/mcp/sse", headers=bearer(all_tools_token))
    assert response.status_code == 503
    assert "/mcp" in response.json()["error"]["message"]


def test_a_public_endpoint_serves_its_listed_tools_without_a_credential(server_a, tools):
    endpoint = McpEndpoint.objects.create(slug="public-echo", name="Public echo", requires_auth=False)
    endpoint.tools.set([tools["echo"]])
    with open_stream(server_a.url, "/mcp/public-echo/sse") as (response, stream):
        endpoint_url = stream.next_event().data
        handshake(server_a.url, endpoint_url, stream, {})
        post(server_a.url, endpoint_url, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, {})
        assert [t["name"] for t in stream.next_message()["result"]["tools"]] == ["echo"]
        call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "create_ticket", "arguments": {"title": "t", "description": "d"}}}
        post(server_a.url, endpoint_url, call, {})
        assert "create_ticket" in stream.next_message()["error"]["message"]
    assert not Ticket.objects.exists()
