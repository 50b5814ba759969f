"""Hostile inputs against the running REST pair: each gets the right error and changes no row it should not.

Every test runs under ``no_external_network`` (tests/network_guard.py): a connection attempt
to an address off this machine fails the test.
"""
from datetime import timedelta

from django.utils import timezone
import pytest

from demo_company.models import Customer, Order, Product
from mcp_tools.models import ApiToken, AuditEvent, Tool
from mcp_tools.services.tokens import token_revoke
from notifications.models import Notification
from tickets.models import Ticket

from ..helpers import LocalHttpServer, json_reply
from ..network_guard import no_external_network  # noqa: F401
from mcp_tools.services.lookup_cache import lookup_cache_bump

pytestmark = pytest.mark.usefixtures("no_external_network")

INVOKE = "/mcp/v1/tools/invoke"


def snapshot():
    return {model.__name__: model.objects.count()
            for model in (Ticket, Customer, Product, Order, Tool, ApiToken, Notification)}


@pytest.fixture
def rows(demo):
    before = snapshot()
    yield before
    assert snapshot() == before, "a hostile request changed rows it should not have"


def post(api, token, content, content_type="application/json", **headers):
    return api.post(INVOKE, content=content, headers={"Authorization": f"Bearer {token}",
                                                       "Content-Type": content_type, **headers})


def assert_error(response, status, text=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False if "success" in body else "detail" in body
    if text:
        assert text in (body.get("error") or body.get("detail")), body


class TestMalformedBodies:
    @pytest.mark.parametrize("content", [
        b"", b"{", b"nul", b'{"name": "echo",}', b"{'name': 'echo'}", b'{"name": "echo"} trailing',
        b"\xff\xfe\x00{", b'{"name": "echo", "arguments": {"x": NaN}}', b'{"name": "echo", "arguments": Infinity}',
        b'{"name": "\\ud800"', b"\x00",
    ])
    def test_malformed_json_is_a_400(self, api, demo_token, rows, content):
        assert_error(post(api, demo_token, content), 400, "Malformed JSON body")
        assert AuditEvent.objects.count() == 0

    @pytest.mark.parametrize("content, text", [
        (b"[]", "must be a JSON object"), (b'"echo"', "must be a JSON object"), (b"42", "must be a JSON object"),
        (b"null", "must be a JSON object"), (b"{}", "Missing 'name'"), (b'{"name": 7}', "Missing 'name'"),
        (b'{"name": ""}', "Missing 'name'"), (b'{"name": ["echo"]}', "Missing 'name'"),
        (b'{"name": {"$ne": null}}', "Missing 'name'"), (b'{"arguments": {}}', "Missing 'name'"),
    ])
    def test_wrong_shapes_are_a_400(self, api, demo_token, rows, content, text):
        assert_error(post(api, demo_token, content), 400, text)

    @pytest.mark.parametrize("arguments", ["[1]", '"text"', "7", "true", "[]"])
    def test_arguments_that_are_not_an_object(self, api, demo_token, rows, arguments):
        response = post(api, demo_token, b'{"name": "create_ticket", "arguments": ' + arguments.encode() + b"}")
        assert_error(response, 400, "Tool arguments must be a JSON object.")

    @pytest.mark.parametrize("arguments, text", [
        ({"title": 5, "description": "d"}, "5 is not of type 'string'"),
        ({"title": "t", "description": "d", "priority": "NOW!!"}, "is not one of"),
        ({"title": "t", "description": "d", "extra": 1}, "Additional properties are not allowed"),
        ({"title": "x" * 201, "description": "d"}, "is too long"),
        ({"title": None, "description": ["d"]}, "is not of type"),
    ])
    def test_wrong_types_are_a_400(self, api, demo_token, rows, arguments, text):
        response = api.post(INVOKE, json={"name": "create_ticket", "arguments": arguments},
                            headers={"Authorization": f"Bearer {demo_token}"})
        assert_error(response, 400, text)
        assert AuditEvent.objects.get().outcome == "invalid"

    @pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                              "multipart/form-data; boundary=x", "application/jsonx", ""])
    def test_other_content_types_are_a_415(self, api, demo_token, rows, content_type):
        assert_error(post(api, demo_token, b'{"name": "echo"}', content_type=content_type), 415)

    def test_a_body_over_the_limit_is_a_413(self, api, demo_token, rows, settings):
        assert_error(post(api, demo_token, b'{"name": "echo", "arguments": {"a": "' +
                          b"x" * settings.MCP_MAX_BODY_BYTES + b'"}}'), 413)
        assert AuditEvent.objects.count() == 0

    def test_a_large_body_under_the_limit_still_works(self, api, demo_token, rows):
        response = post(api, demo_token, b'{"name": "echo", "arguments": {"text": "' + b"x" * 500_000 + b'"}}')
        assert response.status_code == 200
        assert AuditEvent.objects.get().arguments == {"_truncated": True, "_keys": ["text"]}

    def test_many_keys_under_the_limit(self, api, demo_token, rows):
        body = "{" + ",".join(f'"k{i}": {i}' for i in range(20_000)) + "}"
        response = post(api, demo_token, b'{"name": "echo", "arguments": ' + body.encode() + b"}")
        assert response.status_code == 200 and len(response.json()["result"]["echo"]) == 20_000

    @pytest.mark.parametrize("depth", [65, 1_000, 400_000])
    def test_deeply_nested_bodies_are_a_400(self, api, demo_token, rows, settings, depth):
        assert settings.MCP_MAX_JSON_DEPTH == 64
        nested = b"[" * depth + b"]" * depth
        response = post(api, demo_token, b'{"name": "echo", "arguments": {"x": ' + nested + b"}}")
        assert_error(response, 400, "nested deeper than 64 levels")
        assert AuditEvent.objects.count() == 0

    def test_nesting_within_the_limit_is_fine(self, api, demo_token, rows):
        nested = b'{"a": ' * 60 + b"1" + b"}" * 60
        response = post(api, demo_token, b'{"name": "echo", "arguments": ' + nested + b"}")
        assert response.status_code == 200

    def test_brackets_inside_strings_do_not_count_as_nesting(self, api, demo_token, rows):
        response = post(api, demo_token, b'{"name": "echo", "arguments": {"text": "' + b"[{" * 1000 + b'"}}')
        assert response.status_code == 200


class TestNulCharacters:
    """Postgres text cannot hold U+0000: the parser every door shares refuses it, naming where it is."""

    def test_nul_in_arguments_is_refused_at_parse_time(self, api, demo_token, rows):
        response = post(api, demo_token, b'{"name": "create_ticket", "arguments": {"title": "a\\u0000b", '
                                         b'"description": "d"}}')
        assert_error(response, 400, "text at arguments.title holds a NUL character")
        assert AuditEvent.objects.count() == 0  # not a tool call: the request never parsed

    def test_nul_in_a_key_is_a_400(self, api, demo_token, rows):
        response = post(api, demo_token, b'{"name": "echo", "arguments": {"a\\u0000": 1}}')
        assert_error(response, 400, "a member name in arguments holds a NUL character")

    def test_nul_in_the_tool_name_is_a_400(self, api, demo_token, rows):
        assert_error(post(api, demo_token, b'{"name": "echo\\u0000"}'), 400, "text at name holds a NUL")
        assert AuditEvent.objects.count() == 0


class TestTools:
    @pytest.mark.parametrize("name", ["launch_rockets", "ECHO", "echo ", "../echo", "x" * 10_000,
                                      "🚀", "echo; DROP TABLE users", "create_ticket'--"])
    def test_unknown_tools_are_a_404(self, api, demo_token, rows, name):
        response = api.post(INVOKE, json={"name": name}, headers={"Authorization": f"Bearer {demo_token}"})
        assert_error(response, 404, "Unknown tool")
        assert len(AuditEvent.objects.get().tool_name) <= 128

    def test_a_disabled_tool_is_a_403(self, api, demo, demo_token):
        Tool.objects.filter(name="create_ticket").update(enabled=False)
        lookup_cache_bump()  # QuerySet.update() sends no signal
        before = snapshot()
        response = api.post(INVOKE, json={"name": "create_ticket", "arguments": {"title": "t", "description": "d"}},
                            headers={"Authorization": f"Bearer {demo_token}"})
        assert_error(response, 403, "disabled")
        assert snapshot() == before


class TestTokens:
    @pytest.fixture
    def rows(self, demo):
        return None  # tokens are issued inside these tests; each compares counts itself

    def call(self, api, headers):
        before = snapshot()
        response = api.post(INVOKE, json={"name": "create_ticket",
                                          "arguments": {"title": "t", "description": "d"}}, headers=headers)
        assert snapshot() == before
        return response

    def test_expired(self, api, rows, issue_token):
        secret = issue_token(all_tools=True, expires_at=timezone.now() - timedelta(seconds=1)).secret
        assert_error(self.call(api, {"Authorization": f"Bearer {secret}"}), 401, "expired")

    def test_revoked(self, api, rows, issue_token):
        issued = issue_token(all_tools=True)
        token_revoke(token=issued.token)
        assert_error(self.call(api, {"X-API-Key": issued.secret}), 401, "revoked")

    def test_out_of_scope(self, api, demo, rows, issue_token):
        secret = issue_token(tools=[demo["echo"]]).secret
        assert_error(self.call(api, {"Authorization": f"Bearer {secret}"}), 403, "may not call tool 'create_ticket'")

    def test_outside_its_ip_ranges(self, api, rows, issue_token):
        secret = issue_token(all_tools=True, allowed_ips=["10.0.0.0/8"]).secret
        assert_error(self.call(api, {"Authorization": f"Bearer {secret}"}), 403)

    def test_a_tampered_secret(self, api, rows, issue_token):
        secret = issue_token(all_tools=True).secret
        assert_error(self.call(api, {"Authorization": f"Bearer {secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"}),
                     401, "Invalid API token.")

    @pytest.mark.parametrize("headers", [
        {}, {"Authorization": "Bearer"}, {"Authorization": "Bearer\tmcp_x"}, {"Authorization": "Basic YTpi"},
        {"Authorization": "bearer mcp_"}, {"Authorization": "Bearer " + "A" * 8000},
        {"Authorization": "Bearer mcp_abcdefgh_' OR '1'='1"}, {"X-API-Key": ""}, {"X-API-Key": "mcp_x_y"},
        {"Authorization": "Bearer mcp_abcdefgh_".encode() + "\u00e9".encode() * 20},
        {"Authorization": b"Bearer mcp_abcdefgh_\xff\xfe" + b"x" * 30},
    ])
    def test_missing_or_malformed_credentials_are_a_401(self, api, rows, headers):
        response = self.call(api, headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert AuditEvent.objects.count() == 0


SQL_BYPASSES = [
    "WITH x AS (INSERT INTO users (name, email) VALUES ('e', 'e@x.com') RETURNING id) SELECT * FROM x",
    "WITH x AS (UPDATE users SET name = 'pwned' RETURNING id) SELECT * FROM x",
    "WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x",
    "SELECT 1; COMMIT; DROP TABLE users",
    "SELECT 1 /* x */; DELETE FROM orders -- */",
    "SELECT * INTO stolen FROM users",
    "COPY users TO PROGRAM 'id'",
    "SELECT pg_sleep(30)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT lo_import('/etc/passwd')",
    "SELECT * FROM dblink('host=127.0.0.1', 'DELETE FROM orders') AS t(a text)",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM information_schema.tables",
    "SELECT secret_hash FROM mcp_tools_apitoken",
    "SELECT * FROM users FOR UPDATE",
    'SELECT U&"\\0070g_sleep"(30)',
    "SELECT 1;\u200bDELETE FROM orders",
    "DELETE FROM orders",
]


@pytest.mark.parametrize("query", SQL_BYPASSES)
def test_sql_bypass_strings_are_refused(api, demo_token, rows, query):
    response = api.post(INVOKE, json={"name": "database_query", "arguments": {"query": query}},
                        headers={"Authorization": f"Bearer {demo_token}"})
    assert response.status_code == 200 and response.json()["success"] is False
    assert response.json()["error"].startswith("Query refused:")
    assert AuditEvent.objects.get().outcome == "tool_error"


def test_a_huge_sql_result_is_capped(api, demo_token, rows):
    response = api.post(INVOKE, json={"name": "database_query", "arguments": {
        "query": "SELECT a.id, b.id, c.id FROM orders a, orders b, orders c"}},
        headers={"Authorization": f"Bearer {demo_token}"})
    result = response.json()["result"]  # the seed's REST shape: the rows themselves
    assert len(result) == 100 and response.headers["X-Result-Truncated"] == "true"


SSRF_TARGETS = ["127.0.0.1", "127.0.0.1:5432", "169.254.169.254", "10.0.0.1", "192.168.0.1", "172.16.0.1",
                "[::1]", "[::ffff:127.0.0.1]", "localhost", "2130706433", "0177.0.0.1", "0x7f000001",
                "[fd00:ec2::254]", "100.100.100.200", "0.0.0.0", "vm", "runsc"]


@pytest.mark.parametrize("target", SSRF_TARGETS)
def test_ssrf_targets_are_refused_before_connecting(api, demo, demo_token, no_external_network, target):
    Tool.objects.create(name="fetch", description="d", kind="http_request", input_schema={"type": "object"},
                        config={"base_url": f"http://{target}/", "method": "GET"})
    before = snapshot()
    response = api.post(INVOKE, json={"name": "fetch", "arguments": {}},
                        headers={"Authorization": f"Bearer {demo_token}"})
    assert response.status_code == 200 and response.json()["success"] is False
    assert "resolves to" in response.json()["error"]
    assert no_external_network.attempts == []
    assert snapshot() == before


@pytest.mark.parametrize("location", ["http://127.0.0.1:5432/", "http://169.254.169.254/latest/meta-data/iam/",
                                      "http://[::1]/", "http://10.0.0.1/", "http://localhost/admin/"])
def test_redirects_to_internal_targets_are_not_followed(api, demo, demo_token, location):
    with LocalHttpServer(lambda *a: (307, {"Location": location}, b"")) as server:
        Tool.objects.create(name="fetch", description="d", kind="http_request", input_schema={"type": "object"},
                            config={"base_url": server.url, "allowed_hosts": ["127.0.0.1"]})
        response = api.post(INVOKE, json={"name": "fetch", "arguments": {}},
                            headers={"Authorization": f"Bearer {demo_token}"})
    assert response.json() == {"success": False, "error": "The upstream API answered with a redirect (307); "
                                                          "redirects are not followed."}
    assert len(server.requests) == 1


def test_the_callers_credentials_are_not_forwarded_upstream(api, demo, demo_token):
    with LocalHttpServer(lambda m, p, h, b: json_reply(200, {"ok": True})) as server:
        Tool.objects.create(name="fetch", description="d", kind="http_request", input_schema={"type": "object"},
                            config={"base_url": server.url, "method": "POST", "allowed_hosts": ["127.0.0.1"]})
        api.post(INVOKE, json={"name": "fetch", "arguments": {"q": 1}},
                 headers={"Authorization": f"Bearer {demo_token}", "Cookie": "sessionid=abc",
                          "X-API-Key": demo_token})
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert "authorization" not in headers and "cookie" not in headers and "x-api-key" not in headers
    assert demo_token not in str(server.requests[0])


def test_the_server_still_answers_after_all_this(api, demo, demo_token):
    post(api, demo_token, b"[" * 400_000)
    post(api, demo_token, b'{"name": "echo", "arguments": {"x": NaN}}')
    assert api.get("/health").status_code == 200
    response = api.post(INVOKE, json={"name": "echo", "arguments": {"text": "still here"}},
                        headers={"Authorization": f"Bearer {demo_token}"})
    assert response.json() == {"success": True, "result": {"echo": {"text": "still here"}}}
