"""The admin's Connections page: every refusal reason, made by a real request, shows with its fix."""
from datetime import timedelta
import json
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.html import escape
from oauth2_provider.models import AccessToken, Application
import pytest

from mcp_tools.models import ClientConnection, ConnectionRefusal, McpEndpoint, Tool
from mcp_tools.services.connections import (
    REASONS,
    connection_log_flush,
    connection_log_prune,
    connection_refusal_record,
)
from mcp_tools.services.tokens import token_issue, token_revoke

pytestmark = pytest.mark.django_db

PAGE = "/admin/mcp_tools/connectionrefusal/"
STATELESS = "2026-07-28"
ACCEPT = "application/json, text/event-stream"
CLIENT_INFO = {"name": "cursor-agent", "version": "1.4.2"}


@pytest.fixture(autouse=True)
def _empty_connections_log():
    """Refusals an earlier test buffered (from a pool thread, or the pipeline called directly) are not ours."""
    connection_log_flush()
    ConnectionRefusal.objects.all().delete()
    ClientConnection.objects.all().delete()


@pytest.fixture
def echo():
    return Tool.objects.create(name="echo", description="Echo", kind="echo",
                               input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
                               annotations={"readOnlyHint": True})


@pytest.fixture
def token(echo):
    return token_issue(name="agent", all_tools=True)


def _rpc(method, params=None, id_=1):
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}})


def _initialize():
    return _rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT_INFO})


def _stateless_meta():
    return {"io.modelcontextprotocol/protocolVersion": STATELESS,
            "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": CLIENT_INFO}


def _post(client, body, *, secret=None, content_type="application/json", path="/mcp", **extra):
    headers = {"HTTP_ACCEPT": ACCEPT, **extra}
    if secret:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {secret}")
    return client.post(path, data=body, content_type=content_type, **headers)


def _session(client, secret):
    response = _post(client, _initialize(), secret=secret)
    assert response.status_code == 200
    return response["Mcp-Session-Id"]


def _oauth_token(scope, resource):
    app = Application.objects.create(name="billing agent", client_type=Application.CLIENT_CONFIDENTIAL,
                                     authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS)
    value = secrets.token_urlsafe(24)
    AccessToken.objects.create(token=value, application=app, scope=scope, resource=resource,
                               expires=timezone.now() + timedelta(hours=1))
    return value


# Each case: the request that gets refused, and the status it must get. ``token`` is the IssuedToken.
def _no_credential(client, token):
    return _post(client, _initialize()), 401


def _credential_unusable(client, token):
    return _post(client, _initialize(), HTTP_AUTHORIZATION=f"Token {token.secret}"), 401


def _token_malformed(client, token):
    return _post(client, _initialize(), secret="mcp_short"), 401


def _token_unknown(client, token):
    return _post(client, _initialize(), secret="mcp_zzzzzzzz_" + "x" * 43), 401


def _token_wrong_secret(client, token):
    return _post(client, _initialize(), secret=f"mcp_{token.token.prefix}_" + "x" * 43), 401


def _token_revoked(client, token):
    token_revoke(token=token.token)
    return _post(client, _initialize(), secret=token.secret), 401


def _token_expired(client, token):
    expired = token_issue(name="old", all_tools=True, expires_at=timezone.now() - timedelta(days=1))
    return _post(client, _initialize(), secret=expired.secret), 401


def _token_ip_not_allowed(client, token):
    fenced = token_issue(name="fenced", all_tools=True, allowed_ips=["10.0.0.0/8"])
    return client.get("/mcp/v1/tools", HTTP_AUTHORIZATION=f"Bearer {fenced.secret}", REMOTE_ADDR="192.0.2.7"), 403


def _ip_not_allowed(client, token):
    with override_settings(MCP_ALLOWED_IPS=["10.0.0.0/8"]):
        from mcp_tools.security_middleware import EndpointIpAllowListMiddleware  # noqa: F401

        refused = Client(REMOTE_ADDR="192.0.2.8")
        refused.handler.load_middleware()  # the allow-list is read when the middleware is built
        return refused.get("/mcp/v1/tools"), 403


def _oauth_token_invalid(client, token):
    return client.get("/mcp/v1/tools", HTTP_AUTHORIZATION="Bearer not-a-real-access-token"), 401


def _oauth_audience(client, token):
    value = _oauth_token("mcp:tools", ["https://other.example/mcp"])
    return client.get("/mcp/v1/tools", HTTP_AUTHORIZATION=f"Bearer {value}"), 401


def _oauth_scope(client, token):
    value = _oauth_token("tool:nothing", ["http://testserver/mcp"])
    return client.post("/mcp/v1/tools/invoke", data={"name": "echo", "arguments": {"text": "hi"}},
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {value}"), 403


def _origin_refused(client, token):
    return _post(client, _initialize(), secret=token.secret, HTTP_ORIGIN="https://evil.example"), 403


def _host_refused(client, token):
    return _post(client, _initialize(), secret=token.secret, HTTP_HOST="attacker.example"), 400


def _not_acceptable(client, token):
    return _post(client, _initialize(), secret=token.secret, HTTP_ACCEPT="text/html"), 406


def _wrong_content_type(client, token):
    return _post(client, _initialize(), secret=token.secret, content_type="text/plain"), 415


def _body_too_large(client, token):
    with override_settings(MCP_MAX_BODY_BYTES=1024, DATA_UPLOAD_MAX_MEMORY_SIZE=1024):
        return _post(client, _rpc("tools/list", {"pad": "x" * 4096}), secret=token.secret), 413


def _malformed_message(client, token):
    return _post(client, "{not json", secret=token.secret), 400


def _unsupported_protocol_version(client, token):
    meta = {**_stateless_meta(), "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    return _post(client, _rpc("server/discover", {"_meta": meta}), secret=token.secret,
                 HTTP_MCP_PROTOCOL_VERSION="2099-01-01", HTTP_MCP_METHOD="server/discover"), 400


def _header_mismatch(client, token):
    return _post(client, _rpc("tools/list", {"_meta": _stateless_meta()}), secret=token.secret,
                 HTTP_MCP_PROTOCOL_VERSION=STATELESS, HTTP_MCP_METHOD="tools/call"), 400


def _session_required(client, token):
    return _post(client, _rpc("tools/list"), secret=token.secret), 400


def _session_unknown(client, token):
    return _post(client, _rpc("tools/list"), secret=token.secret, HTTP_MCP_SESSION_ID="ended-session"), 404


def _unknown_endpoint(client, token):
    return _post(client, _initialize(), secret=token.secret, path="/mcp/no-such-endpoint"), 404


def _rate_limited(client, token):
    limited = token_issue(name="limited", all_tools=True, rate_limit="1/m")
    call = {"name": "echo", "arguments": {"text": "hi"}}
    headers = {"HTTP_AUTHORIZATION": f"Bearer {limited.secret}"}
    assert client.post("/mcp/v1/tools/invoke", data=call, content_type="application/json", **headers).status_code \
        == 200
    return client.post("/mcp/v1/tools/invoke", data=call, content_type="application/json", **headers), 429


def _stream_cap(client, token):
    session_id = _session(client, token.secret)
    with override_settings(MCP_LISTEN_MAX_STREAMS=0):
        return client.get("/mcp", HTTP_ACCEPT="text/event-stream", HTTP_AUTHORIZATION=f"Bearer {token.secret}",
                          HTTP_MCP_SESSION_ID=session_id), 503


CASES = {name[1:]: case for name, case in globals().items() if name[1:] in REASONS and callable(case)}


def test_every_reason_has_a_request_that_produces_it():
    assert sorted(CASES) == sorted(REASONS)


@pytest.fixture
def admin_client():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("reason", sorted(REASONS))
def test_each_refusal_shows_on_the_connections_page_with_its_fix(reason, token, admin_client):
    response, status = CASES[reason](Client(), token)
    assert response.status_code == status, response.content[:300]
    page = admin_client.get(PAGE)

    assert page.status_code == 200
    assert [r.reason for r in ConnectionRefusal.objects.all()] == [reason], response.content
    row = ConnectionRefusal.objects.get()
    assert row.count == 1 and row.http_status == status
    html = page.content.decode()
    assert escape(REASONS[reason].words) in html and escape(REASONS[reason].fix) in html
    stored = json.dumps([list(r.values()) for r in ConnectionRefusal.objects.values()], default=str)
    assert token.secret.split("_", 2)[2] not in stored  # never the secret


def test_a_refusal_names_the_client_its_token_prefix_and_links_to_its_audit_events(token, admin_client):
    wrong = f"mcp_{token.token.prefix}_" + "x" * 43
    _post(Client(), _initialize(), secret=wrong, REMOTE_ADDR="192.0.2.44")
    audit_url = f"/admin/mcp_tools/auditevent/?token_prefix={token.token.prefix}"
    assert audit_url not in admin_client.get(PAGE).content.decode()  # no audit events yet: no link
    assert Client().post("/mcp/v1/tools/invoke", data={"name": "echo", "arguments": {"text": "hi"}},
                         content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {token.secret}").status_code == 200
    page = admin_client.get(PAGE).content.decode()

    row = ConnectionRefusal.objects.get()
    assert (row.reason, row.token_prefix, row.client_name, row.client_version, row.client_ip, row.transport,
            row.path) == ("token_wrong_secret", token.token.prefix, "cursor-agent", "1.4.2", "192.0.2.44",
                          "streamable-http", "/mcp")
    assert row.detail == "Invalid API token."  # what the client heard: no oracle for valid prefixes
    assert audit_url in page
    assert "x" * 43 not in json.dumps(list(ConnectionRefusal.objects.values()), default=str)


def test_repeated_refusals_are_counted_per_hour_and_day(token, admin_client):
    client = Client()
    for _ in range(5):
        assert _post(client, _initialize()).status_code == 401
    page = admin_client.get(PAGE)

    by_reason = page.context["by_reason"]
    assert [(g["reason"], g["last_hour"], g["last_day"]) for g in by_reason] == [("no_credential", 5, 5)]
    by_client = page.context["by_client"]
    assert [(g["client_name"], g["last_day"]) for g in by_client] == [("cursor-agent", 5)]


def test_identical_refusals_in_one_flush_window_fold_into_one_row():
    for _ in range(5):
        connection_refusal_record(reason="no_credential", transport="rest", path="/mcp/v1/tools",
                                  client_ip="192.0.2.1")
    connection_refusal_record(reason="no_credential", transport="rest", path="/mcp/v1/tools", client_ip="192.0.2.2")
    assert connection_log_flush() == 2

    assert sorted(ConnectionRefusal.objects.values_list("client_ip", "count")) == [("192.0.2.1", 5), ("192.0.2.2", 1)]


def test_accepted_requests_record_no_refusal_and_list_the_client(token, admin_client):
    client = Client()
    session_id = _session(client, token.secret)
    assert _post(client, _rpc("tools/list", id_=2), secret=token.secret,
                 HTTP_MCP_SESSION_ID=session_id).status_code == 200
    assert _post(client, _rpc("tools/list", {"_meta": _stateless_meta()}), secret=token.secret,
                 HTTP_MCP_PROTOCOL_VERSION=STATELESS, HTTP_MCP_METHOD="tools/list").status_code == 200
    page = admin_client.get(PAGE).content.decode()

    assert ConnectionRefusal.objects.count() == 0
    seen = ClientConnection.objects.get()
    assert (seen.credential, seen.client_name, seen.client_version, seen.transport) == (
        token.token.prefix, "cursor-agent", "1.4.2", "streamable-http")
    assert seen.protocol_version in ("2025-11-25", STATELESS)
    assert "cursor-agent" in page


def test_a_public_endpoint_takes_requests_without_a_credential_and_records_none(echo, admin_client):
    endpoint = McpEndpoint.objects.create(slug="public", name="Public", requires_auth=False)
    endpoint.tools.add(echo)
    assert _post(Client(), _initialize(), path="/mcp/public").status_code == 200
    admin_client.get(PAGE)
    assert ConnectionRefusal.objects.count() == 0


def test_support_staff_may_read_the_page_but_not_change_it(token):
    user = get_user_model().objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support staff"))
    client = Client()
    client.force_login(user)
    _post(Client(), _initialize())

    assert client.get(PAGE).status_code == 200
    row = ConnectionRefusal.objects.get()
    assert client.post(f"{PAGE}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ConnectionRefusal.objects.filter(pk=row.pk).exists()


def test_old_rows_are_pruned_after_the_retention_period():
    connection_refusal_record(reason="no_credential", transport="rest", path="/mcp/v1/tools")
    connection_log_flush()
    ConnectionRefusal.objects.update(last_at=timezone.now() - timedelta(days=8))
    connection_refusal_record(reason="no_credential", transport="rest", path="/mcp/v1/tools")
    connection_log_flush()

    with override_settings(MCP_CONNECTION_LOG_RETENTION_DAYS=7):
        assert connection_log_prune() == 1
    assert ConnectionRefusal.objects.count() == 1


def test_an_unknown_reason_is_a_programming_error():
    with pytest.raises(ValueError):
        connection_refusal_record(reason="because", transport="rest")
