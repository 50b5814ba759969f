"""Property-based fuzzing of the MCP endpoint (/mcp) and the REST pair (/mcp/v1/tools, /mcp/v1/tools/invoke).

Whatever arrives (arbitrary bytes, arbitrary JSON, JSON-RPC-shaped objects, hostile tool calls), the answer is
well-formed (a JSON-RPC result or error on /mcp, the seed's {"success": ...} shape on REST) with a sensible
client-error or success status, never a 5xx or a traceback, and no Ticket/Tool/ApiToken row changes.
The requests go through Django's test client (the whole middleware stack, in-process) so hundreds of
examples take seconds.
"""
import json

from django.test import Client
from hypothesis import example, given, strategies as st
import pytest

from demo_company.seed import seed_company, seed_tools
from mcp_tools.models import ApiToken, Tool
from mcp_tools.services.tokens import token_issue
from tickets.models import Ticket

from ..network_guard import no_external_network  # noqa: F401
from .profile import fuzz
from .strategies import TOOL_NAMES, bodies, json_values, jsonrpc_like, stateless_requests

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_external_network")]

MCP_OK_STATUSES = {200, 202, 400, 401, 403, 404, 405, 406, 413, 415, 429}
REST_OK_STATUSES = {200, 400, 401, 403, 404, 413, 415, 429}
content_types = st.one_of(st.just("application/json"), st.just("application/json; charset=utf-8"),
                          st.sampled_from(["text/plain", "application/x-www-form-urlencoded", ""]))
protocol_headers = st.sampled_from([None, "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01", "x"])


def rows_snapshot():
    """Every Ticket, Tool and ApiToken row (last_used_at aside: using a token may stamp it)."""
    return (list(Ticket.objects.order_by("pk").values()),
            list(Tool.objects.order_by("pk").values()),
            list(ApiToken.objects.order_by("pk").values(*[f.attname for f in ApiToken._meta.concrete_fields
                                                          if f.name != "last_used_at"])))


@pytest.fixture
def seeded(db):
    seed_company()
    # Nothing listens on port 9: the internal-API tools are not in the fuzzed names anyway.
    seed_tools("http://127.0.0.1:9")
    token = token_issue(name="fuzz", all_tools=True).secret
    before = rows_snapshot()
    yield Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert rows_snapshot() == before, "a fuzzed request changed Ticket/Tool/ApiToken rows"


def assert_no_traceback(response):
    text = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"Traceback" not in text and b'File "' not in text, text[:500]
    return text


def assert_jsonrpc_message(message):
    assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
    assert ("result" in message) != ("error" in message), message
    if "error" in message:
        error = message["error"]
        assert isinstance(error.get("code"), int) and not isinstance(error["code"], bool), message
        assert isinstance(error.get("message"), str), message
    if "id" in message and not ("error" in message and message["id"] is None):  # null: id unknown (JSON-RPC 2.0)
        assert isinstance(message["id"], (str, int)) and not isinstance(message["id"], bool), message


def assert_mcp_answer(response):
    assert response.status_code in MCP_OK_STATUSES, (response.status_code, response.content[:500])
    text = assert_no_traceback(response)
    if response.status_code in (202, 405) or not text:
        assert response.status_code in (202, 405), response.status_code
        return
    content_type = response["Content-Type"]
    if content_type.startswith("text/event-stream"):
        messages = [json.loads(line[5:]) for line in text.decode().splitlines() if line.startswith("data:")]
        assert messages
    else:
        assert content_type.startswith("application/json"), content_type
        messages = [json.loads(text)]
    for message in messages:
        if "method" in message:  # a server notification inside an SSE stream
            continue
        assert_jsonrpc_message(message)


def post_mcp(client, body, content_type="application/json", version=None, accept="application/json"):
    extra = {"HTTP_ACCEPT": accept}
    if version:
        extra["HTTP_MCP_PROTOCOL_VERSION"] = version
    return client.post("/mcp", data=body, content_type=content_type, **extra)


@fuzz
@given(body=bodies, content_type=content_types, version=protocol_headers)
def test_mcp_any_body(seeded, body, content_type, version):
    assert_mcp_answer(post_mcp(seeded, body, content_type, version))


@fuzz
@given(message=jsonrpc_like, version=protocol_headers)
def test_mcp_jsonrpc_shaped(seeded, message, version):
    assert_mcp_answer(post_mcp(seeded, json.dumps(message), version=version))


def _header_value(value):
    return value if isinstance(value, str) and value.isascii() and value.isprintable() and value.strip() else None


@fuzz
@given(message=stateless_requests)
def test_mcp_stateless_requests_with_fuzzed_params(seeded, message):
    """Well-formed stateless-era requests with the headers they need, so the fuzzed parts reach the handlers."""
    extra = {"HTTP_ACCEPT": "application/json", "HTTP_MCP_PROTOCOL_VERSION": "2026-07-28"}
    params = message["params"]
    for header, value in (("HTTP_MCP_METHOD", message["method"]),
                          ("HTTP_MCP_NAME", params.get("name", params.get("uri")))):
        if _header_value(value):
            extra[header] = value
    response = seeded.post("/mcp", data=json.dumps(message), content_type="application/json", **extra)
    assert_mcp_answer(response)


@fuzz
@given(body=bodies)
def test_mcp_without_token_is_refused_cleanly(seeded, body):
    response = Client().post("/mcp", data=body, content_type="application/json", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert_mcp_answer(response)


# --- the REST pair ---------------------------------------------------------------------------------------

def assert_rest_answer(response):
    assert response.status_code in REST_OK_STATUSES, (response.status_code, response.content[:500])
    text = assert_no_traceback(response)
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(text)
    assert isinstance(body, dict)
    if "success" in body:
        assert isinstance(body["success"], bool)
        if body["success"]:
            assert response.status_code == 200 and "result" in body
        else:
            assert isinstance(body.get("error"), str) and body["error"]
    elif "tools" in body:
        assert response.status_code == 200 and isinstance(body["tools"], list)
    else:
        assert isinstance(body.get("detail"), str), body  # DRF's own refusals (auth, method)
    return body


invoke_payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"name": st.one_of(st.sampled_from(TOOL_NAMES), json_values),
                                        "arguments": json_values}),
)


@fuzz
@given(body=bodies, content_type=content_types)
def test_rest_invoke_any_body(seeded, body, content_type):
    assert_rest_answer(seeded.post("/mcp/v1/tools/invoke", data=body, content_type=content_type))


@fuzz
@given(payload=invoke_payloads)
@example(payload={"name": "no_such_tool", "arguments": None})  # was a 500: NULL audit arguments (fixed)
@example(payload={"name": "echo", "arguments": None})
def test_rest_invoke_fuzzed_calls(seeded, payload):
    response = seeded.post("/mcp/v1/tools/invoke", data=json.dumps(payload), content_type="application/json")
    body = assert_rest_answer(response)
    if not (isinstance(payload, dict) and isinstance(payload.get("name"), str) and payload["name"]):
        assert response.status_code == 400 and body["success"] is False
    elif not isinstance(payload.get("arguments", {}), (dict, type(None))):
        # A malformed request, refused before any tool is looked up (as /mcp answers -32602).
        assert response.status_code == 400 and body["error"] == "Tool arguments must be a JSON object."
    elif payload["name"] not in TOOL_NAMES or payload["name"] == "no_such_tool":
        assert response.status_code == 404 and body["success"] is False


@fuzz
@given(query=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
       authorization=st.one_of(st.none(), st.text(max_size=40)))
def test_rest_list_tools(seeded, query, authorization):
    client = seeded if authorization is None else Client(HTTP_AUTHORIZATION=authorization)
    response = client.get("/mcp/v1/tools", data=query)
    body = assert_rest_answer(response)
    if authorization is None and "format" not in query:  # DRF answers 404 to an unknown ?format= suffix
        assert response.status_code == 200
        assert {tool["name"] for tool in body["tools"]} >= {"echo", "get_ticket"}
