"""OAuth 2.1 access tokens on the MCP endpoint: scoped tool lists, and 403 insufficient_scope naming the scope."""
from __future__ import annotations

import httpx
from oauth2_provider.models import Application
import pytest

from tickets.models import Ticket

from .helpers import McpHttp

SECRET = "client-secret-for-mcp-tests-0123456789"


@pytest.fixture
def access_token(mcp_server, demo):
    app = Application.objects.create(name="agent", client_type=Application.CLIENT_CONFIDENTIAL,
                                     authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
                                     client_secret=SECRET, hash_client_secret=False)  # server hashes differ
    response = httpx.post(f"{mcp_server.url}/o/token/", data={
        "grant_type": "client_credentials", "client_id": app.client_id, "client_secret": SECRET,
        "scope": "tool:echo", "resource": f"{mcp_server.url}/mcp"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_an_oauth_client_sees_and_calls_only_its_scoped_tools(mcp_server, access_token):
    client = McpHttp(f"{mcp_server.url}/mcp", access_token)
    try:
        response, (listed,) = client.stateless("tools/list")
        assert response.status_code == 200
        assert [t["name"] for t in listed["result"]["tools"]] == ["echo"]
        response, (called,) = client.stateless("tools/call", {"name": "echo", "arguments": {"text": "hi"}},
                                               name="echo")
        assert response.status_code == 200 and not called["result"].get("isError")
        assert '"text": "hi"' in called["result"]["content"][0]["text"]
    finally:
        client.close()


def test_a_tool_outside_the_scopes_answers_403_insufficient_scope(mcp_server, access_token):
    client = McpHttp(f"{mcp_server.url}/mcp", access_token)
    try:
        response, (reply,) = client.stateless(
            "tools/call", {"name": "create_ticket", "arguments": {"title": "t", "description": "d"}},
            name="create_ticket")
    finally:
        client.close()
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="tool:create_ticket"' in challenge
    assert f'resource_metadata="{mcp_server.url}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert reply["error"]["data"] == {"requiredScope": "tool:create_ticket"}
    assert Ticket.objects.count() == 0


def test_an_unknown_tool_stays_a_plain_protocol_error(mcp_server, access_token):
    client = McpHttp(f"{mcp_server.url}/mcp", access_token)
    try:
        response, (reply,) = client.stateless("tools/call", {"name": "no_such_tool", "arguments": {}},
                                              name="no_such_tool")
    finally:
        client.close()
    assert response.status_code == 400 and reply["error"]["code"] == -32602
    assert "WWW-Authenticate" not in response.headers
