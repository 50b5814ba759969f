"""Protocol edges found with real clients (issue: held streams and protocol edges), against real gunicorn.

* every error body is a valid JSON-RPC response (``"id": null`` when unknown), so the official Python SDK
  (mcp 2.3.0) shows the server's own message instead of "Server returned an error response";
* an OAuth token refresh keeps the MCP session (sessions belong to the user and client application).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from oauth2_provider.models import Application
import pytest

from .helpers import McpHttp, rpc



async def _sdk_error(url: str, headers: dict[str, str]) -> str:
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20, read=30))
    client = Client(streamable_http_client(url, http_client=http), mode="legacy", raise_exceptions=True)
    try:
        async with http, client:
            await client.list_tools()
    except Exception as exc:  # the SDK raises its MCPError (inside an exception group, depending on the layer)
        return repr(exc) + " " + " ".join(repr(e) for e in getattr(exc, "exceptions", ()))
    return "no error"


def test_the_sdk_client_shows_the_servers_authentication_message(mcp_server, demo):
    shown = anyio.run(_sdk_error, f"{mcp_server.url}/mcp", {})
    assert "Authentication required" in shown, shown
    assert "Server returned an error response" not in shown


def test_the_sdk_client_shows_the_servers_origin_message(mcp_server, demo, demo_token):
    shown = anyio.run(_sdk_error, f"{mcp_server.url}/mcp",
                      {"Authorization": f"Bearer {demo_token}", "Origin": "https://evil.example"})
    assert "Origin" in shown, shown


@pytest.mark.parametrize("case", ["no-auth", "origin", "content-type", "parse", "no-session-get", "bad-session"])
def test_every_refusal_before_parsing_is_a_jsonrpc_response_with_an_id(mcp_server, demo, demo_token, case):
    url = f"{mcp_server.url}/mcp"
    auth = {"Authorization": f"Bearer {demo_token}"}
    json_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    body = json.dumps(rpc("ping", id=7))
    if case == "no-auth":
        response = httpx.post(url, content=body, headers=json_headers)
    elif case == "origin":
        response = httpx.post(url, content=body, headers={**json_headers, **auth, "Origin": "https://evil.example"})
    elif case == "content-type":
        response = httpx.post(url, content=body, headers={**json_headers, **auth, "Content-Type": "text/plain"})
    elif case == "parse":
        response = httpx.post(url, content=b"{not json", headers={**json_headers, **auth})
    elif case == "no-session-get":
        response = httpx.get(url, headers={**auth, "Accept": "text/event-stream"})
    else:
        response = httpx.post(url, content=body, headers={**json_headers, **auth, "Mcp-Session-Id": "nope"})
    assert response.status_code >= 400
    reply = response.json()
    assert reply["jsonrpc"] == "2.0" and "id" in reply, reply
    assert reply["id"] in (None, 7)
    assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]
    if case == "bad-session":
        assert reply["id"] == 7  # known once the body was read


# --- OAuth refresh keeps the session ---------------------------------------------------------------

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
def oauth_app(mcp_server, demo):
    from django.contrib.auth import get_user_model

    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    class QuickPbkdf2(PBKDF2PasswordHasher):  # the server (production settings) cannot read the tests' MD5
        iterations = 1000

    users = get_user_model()
    for name in ("alice-edge", "bob-edge"):
        user = users.objects.create_user(name, f"{name}@example.com", is_staff=True)
        user.password = QuickPbkdf2().encode(f"pw-{name}-0123", QuickPbkdf2().salt())
        user.save()
    return Application.objects.create(
        name="desktop client", client_type=Application.CLIENT_PUBLIC, skip_authorization=True,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris=REDIRECT)


def _user_token(server, app, username) -> dict:
    """The authorization code flow with PKCE, as a browser and a public client would run it."""
    with httpx.Client(base_url=server.url, timeout=20) as browser:
        page = browser.get("/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = browser.post("/admin/login/", data={"username": username, "password": f"pw-{username}-0123",
                                                    "csrfmiddlewaretoken": csrf, "next": "/admin/"})
        assert login.status_code == 302, login.text[:300]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        response = browser.get("/o/authorize/", params={
            "response_type": "code", "client_id": app.client_id, "redirect_uri": REDIRECT, "scope": "tool:echo",
            "state": "s", "resource": f"{server.url}/mcp", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        assert response.status_code == 302, response.text[:300]
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    token = httpx.post(f"{server.url}/o/token/", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": app.client_id,
        "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return token.json()


def test_a_refreshed_oauth_token_keeps_the_mcp_session(mcp_server, oauth_app):
    app = oauth_app
    first = _user_token(mcp_server, app, "alice-edge")
    client = McpHttp(f"{mcp_server.url}/mcp", first["access_token"])
    try:
        session_id = client.initialize()
        refreshed = httpx.post(f"{mcp_server.url}/o/token/", data={
            "grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": app.client_id})
        assert refreshed.status_code == 200, refreshed.text
        new_token = refreshed.json()["access_token"]
        assert new_token != first["access_token"]
        client.headers["Authorization"] = f"Bearer {new_token}"
        response, (reply,) = client.post(rpc("tools/list"))
        assert response.status_code == 200, response.text
        assert [tool["name"] for tool in reply["result"]["tools"]] == ["echo"]
        assert client.session_id == session_id

        # The old token was revoked by the refresh; another user of the same client gets no session.
        other = _user_token(mcp_server, app, "bob-edge")
        client.headers["Authorization"] = f"Bearer {other['access_token']}"
        response = client.post_raw(json.dumps(rpc("tools/list")))
        assert response.status_code == 404, response.text
    finally:
        client.close()


def test_an_api_token_cannot_use_another_tokens_session(mcp_server, demo, issue_token):
    one, two = (issue_token(name=n, all_tools=True).secret for n in ("one", "two"))
    client = McpHttp(f"{mcp_server.url}/mcp", one)
    try:
        client.initialize()
        client.headers["Authorization"] = f"Bearer {two}"
        response = client.post_raw(json.dumps(rpc("tools/list")))
        assert response.status_code == 404
    finally:
        client.close()


# --- prompts/get without an optional argument -------------------------------------------------------

async def _prompt_texts(url: str, token: str) -> dict[str, str]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(20, read=30))
    client = Client(streamable_http_client(url, http_client=http), mode="legacy", raise_exceptions=True)
    async with http, client:
        found = {}
        for name in ("triage_ticket", "edge_note"):
            got = await client.get_prompt(name, {"message": "The printer is on fire."})
            found[name] = got.messages[0].content.text
        return found


def test_a_missing_optional_prompt_argument_leaves_readable_text(mcp_server, demo, demo_token):
    from mcp_tools.models import Prompt

    Prompt.objects.create(
        name="edge_note", arguments=[{"name": "message", "required": True}, {"name": "product"}],
        template="Summarise the report. It concerns {product}. Keep it short!\nReport: {message}")
    texts = anyio.run(_prompt_texts, f"{mcp_server.url}/mcp", demo_token)
    # The seed's optional customer_email has a default; edge_note's optional product has none.
    assert texts["triage_ticket"].startswith("Read this message from the customer and create a ticket")
    assert texts["edge_note"] == "Summarise the report. Keep it short!\nReport: The printer is on fire."
    for text in texts.values():
        assert "{" not in text and "  " not in text


# --- JSON-RPC batches: required by 2025-03-26, removed by 2025-06-18 -----------------------------------

def _session_at(server, token, version: str) -> McpHttp:
    client = McpHttp(f"{server.url}/mcp", token)
    response = client.post_raw(json.dumps(rpc("initialize", {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "batch", "version": "1"}})))
    assert response.status_code == 200 and response.json()["result"]["protocolVersion"] == version
    client.session_id, client.version = response.headers["Mcp-Session-Id"], version
    client.post_raw(json.dumps(rpc("notifications/initialized", id=None)))
    return client


BATCH = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
         {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "x", "progress": 1}},
         {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}, {"jsonrpc": "2.0", "id": 4}]


def test_a_2025_03_26_session_accepts_batches(mcp_server, demo, demo_token):
    client = _session_at(mcp_server, demo_token, "2025-03-26")
    try:
        response = client.post_raw(json.dumps(BATCH))
        assert response.status_code == 200, response.text
        replies = {reply["id"]: reply for reply in response.json()}
        assert set(replies) == {1, 2, 3, 4}  # one response per request, none for the notification
        assert replies[1]["result"] == {}
        assert len(replies[2]["result"]["tools"]) >= 1
        assert replies[3]["error"]["code"] == -32601
        assert replies[4]["error"]["code"] == -32600
        only_notifications = client.post_raw(json.dumps([BATCH[2]]))
        assert only_notifications.status_code == 202
        empty = client.post_raw(b"[]")
        assert empty.status_code == 400 and empty.json()["error"]["code"] == -32600
    finally:
        client.close()


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", None])
def test_later_revisions_and_sessionless_requests_refuse_batches(mcp_server, demo, demo_token, version):
    client = _session_at(mcp_server, demo_token, version) if version else McpHttp(f"{mcp_server.url}/mcp",
                                                                                  demo_token)
    try:
        response = client.post_raw(json.dumps(BATCH[:2]))
        assert response.status_code == 400
        assert response.json() == {"jsonrpc": "2.0", "id": None, "error": {
            "code": -32600, "message": response.json()["error"]["message"]}}
        assert "batch" in response.json()["error"]["message"]
    finally:
        client.close()
