"""OAuth 2.1 over real HTTP: metadata, client credentials, authorization code + PKCE, audience and scopes."""
import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import get_user_model
from oauth2_provider.models import Application
import pytest

from tickets.models import Ticket

CLIENT_SECRET = "client-secret-for-tests-only-0123456789"


@pytest.fixture
def machine_client(demo):
    return Application.objects.create(
        name="billing agent", client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS, client_secret=CLIENT_SECRET)


def client_credentials_token(api, app, *, scope, resource):
    data = {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": CLIENT_SECRET,
            "scope": scope}
    if resource:
        data["resource"] = resource
    response = api.post("/o/token/", data=data)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_protected_resource_metadata(api, live_server, demo):
    document = api.get("/.well-known/oauth-protected-resource/mcp").json()
    assert document["resource"] == f"{live_server.url}/mcp"
    assert document["authorization_servers"] == [live_server.url]
    assert {"mcp:tools", "tool:echo", "tool:create_ticket"} <= set(document["scopes_supported"])
    assert api.get("/.well-known/oauth-protected-resource").status_code == 200


def test_authorization_server_metadata(api, live_server, demo):
    document = api.get("/.well-known/oauth-authorization-server").json()
    assert document["token_endpoint"] == f"{live_server.url}/o/token/"
    assert document["authorization_endpoint"] == f"{live_server.url}/o/authorize/"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" in document["grant_types_supported"]
    assert "password" not in document["grant_types_supported"]


def test_401_points_at_the_resource_metadata(api, live_server, demo):
    response = api.get("/mcp/v1/tools")
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{live_server.url}/.well-known/oauth-protected-resource/mcp"' in challenge


def test_client_credentials_token_scoped_to_one_tool(api, live_server, machine_client):
    token = client_credentials_token(api, machine_client, scope="tool:echo", resource=f"{live_server.url}/mcp")
    headers = {"Authorization": f"Bearer {token}"}
    assert [t["name"] for t in api.get("/mcp/v1/tools", headers=headers).json()["tools"]] == ["echo"]
    ok = api.post("/mcp/v1/tools/invoke", headers=headers, json={"name": "echo", "arguments": {"text": "hi"}})
    assert ok.json() == {"success": True, "result": {"echo": {"text": "hi"}}}

    refused = api.post("/mcp/v1/tools/invoke", headers=headers,
                       json={"name": "create_ticket", "arguments": {"title": "t", "description": "d"}})
    assert refused.status_code == 403
    assert "scope 'tool:create_ticket'" in refused.json()["error"]
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert 'scope="tool:create_ticket"' in refused.headers["WWW-Authenticate"]
    assert Ticket.objects.count() == 0


def test_the_all_tools_scope(api, live_server, machine_client):
    token = client_credentials_token(api, machine_client, scope="mcp:tools", resource=f"{live_server.url}/mcp")
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {token}"},
                        json={"name": "create_ticket", "arguments": {"title": "t", "description": "d"}})
    assert response.json()["success"] is True
    from mcp_tools.models import AuditEvent

    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert event.token is None and event.token_prefix == f"oauth:{machine_client.client_id}"[:16]


def test_a_token_for_another_resource_is_refused(api, machine_client):
    token = client_credentials_token(api, machine_client, scope="mcp:tools", resource="https://other.example/mcp")
    response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "The access token is not valid for this resource."
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_bound_to_no_resource_is_refused(api, live_server, machine_client):
    token = client_credentials_token(api, machine_client, scope="mcp:tools", resource=None)
    response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert f"resource={live_server.url}/mcp" in response.json()["detail"]


def test_an_unknown_access_token_is_refused(api, demo):
    response = api.get("/mcp/v1/tools", headers={"Authorization": "Bearer not-a-real-access-token"})
    assert response.status_code == 401


def _login(api, username, password):
    login_page = api.get("/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    response = api.post("/admin/login/", data={"username": username, "password": password,
                                               "csrfmiddlewaretoken": csrf, "next": "/admin/"})
    assert response.status_code == 302


def test_authorization_code_with_pkce(api, live_server, demo):
    user = get_user_model().objects.create_user("alice", "alice@example.com", "alice-password", is_staff=True)
    app = Application.objects.create(
        name="desktop client", client_type=Application.CLIENT_PUBLIC, user=user, skip_authorization=True,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="http://127.0.0.1:9/callback")
    _login(api, "alice", "alice-password")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": "http://127.0.0.1:9/callback",
              "scope": "tool:echo", "state": "xyz", "resource": f"{live_server.url}/mcp"}

    without_pkce = api.get("/o/authorize/", params=params)
    assert without_pkce.status_code in (302, 400)
    assert "code=" not in without_pkce.headers.get("Location", "")

    response = api.get("/o/authorize/", params={**params, "code_challenge": challenge,
                                                 "code_challenge_method": "S256"})
    assert response.status_code == 302, response.text[:500]
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["state"] == ["xyz"]

    wrong = api.post("/o/token/", data={"grant_type": "authorization_code", "code": query["code"][0],
                                        "redirect_uri": "http://127.0.0.1:9/callback", "client_id": app.client_id,
                                        "code_verifier": "x" * 50})
    assert wrong.status_code == 400
    response = api.get("/o/authorize/", params={**params, "code_challenge": challenge,
                                                 "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    token = api.post("/o/token/", data={"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": "http://127.0.0.1:9/callback", "client_id": app.client_id,
                                        "code_verifier": verifier})
    assert token.status_code == 200, token.text
    tools = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert [t["name"] for t in tools.json()["tools"]] == ["echo"]
