"""MCP methods in the 2026-07-28 stateless era, validated against the 2026-07-28 schema."""
import pytest

from mcp_tools.protocol.server import build_dispatcher

from .fake_backend import FakeBackend
from .helpers import STATE_KEY, RecordingOutbound, assert_valid, assert_valid_response, rpc

V = "2026-07-28"
CAPS = {"sampling": {}, "elicitation": {}, "roots": {"listChanged": True}}
SERVER_INFO = {"name": "django-mcp", "version": "0.1.0"}


def meta(caps=None, **extra):
    m = {"io.modelcontextprotocol/protocolVersion": V,
         "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
         "io.modelcontextprotocol/clientCapabilities": CAPS if caps is None else caps}
    m.update(extra)
    return m


def headers_for(method, params):
    h = {"MCP-Protocol-Version": V, "Mcp-Method": method}
    name = params.get("uri") if method == "resources/read" else params.get("name")
    if method in ("tools/call", "prompts/get", "resources/read") and name is not None:
        h["Mcp-Name"] = name
    return h


@pytest.fixture
def dispatcher():
    return build_dispatcher(FakeBackend(), server_info=SERVER_INFO, state_key=STATE_KEY, page_size=50)


def call(dispatcher, method, params=None, *, caps=None, id=1, headers=True, outbound=None, **meta_extra):
    params = dict(params or {})
    params.setdefault("_meta", meta(caps, **meta_extra))
    hdrs = headers_for(method, params) if headers else None
    return dispatcher.handle(rpc(method, params, id=id), headers=hdrs, outbound=outbound)


def tool(dispatcher, name, **params):
    return call(dispatcher, "tools/call", {"name": name, "arguments": {}, **params})


def test_discover_describes_versions_capabilities_and_server(dispatcher):
    out = call(dispatcher, "server/discover")
    assert out.http_status == 200
    assert_valid_response(V, "DiscoverResult", out.response)
    result = out.response["result"]
    assert result["supportedVersions"] == ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"]
    assert result["capabilities"] == {"tools": {"listChanged": True}, "resources": {"subscribe": True},
                                      "prompts": {}, "completions": {}, "logging": {}}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"] == SERVER_INFO
    assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private")


@pytest.mark.parametrize("params", [
    {},
    {"_meta": {"io.modelcontextprotocol/clientCapabilities": {}}},
    {"_meta": {"io.modelcontextprotocol/protocolVersion": V}},
])
def test_missing_meta_fields_are_invalid_params_with_400(dispatcher, params):
    out = dispatcher.handle(rpc("server/discover", params, id=101), headers={"MCP-Protocol-Version": V,
                                                                            "Mcp-Method": "server/discover"})
    assert out.http_status == 400
    assert out.response["id"] == 101
    assert out.response["error"]["code"] == -32602
    assert_valid(V, "JSONRPCErrorResponse", out.response)


def test_client_info_is_optional(dispatcher):
    m = meta()
    del m["io.modelcontextprotocol/clientInfo"]
    out = call(dispatcher, "server/discover", {"_meta": m})
    assert out.http_status == 200 and "result" in out.response


def test_unsupported_version_lists_supported_and_echoes_requested(dispatcher):
    params = {"_meta": meta(**{"io.modelcontextprotocol/protocolVersion": "v999.0.0"})}
    out = dispatcher.handle(rpc("server/discover", params, id=301),
                            headers={"MCP-Protocol-Version": "v999.0.0", "Mcp-Method": "server/discover"})
    assert out.http_status == 400
    assert_valid(V, "UnsupportedProtocolVersionError", out.response)
    assert out.response["error"]["data"] == {"supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
                                             "requested": "v999.0.0"}


def test_header_body_version_mismatch_is_32020(dispatcher):
    params = {"_meta": meta(**{"io.modelcontextprotocol/protocolVersion": "v999.0.0"})}
    out = dispatcher.handle(rpc("server/discover", params, id=302),
                            headers={"MCP-Protocol-Version": V, "Mcp-Method": "server/discover"})
    assert out.http_status == 400
    assert_valid(V, "HeaderMismatchError", out.response)


def test_wrong_mcp_name_is_32020(dispatcher):
    params = {"name": "test_simple_text", "arguments": {}, "_meta": meta()}
    out = dispatcher.handle(rpc("tools/call", params),
                            headers={"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": "other"})
    assert out.response["error"]["code"] == -32020 and out.http_status == 400


@pytest.mark.parametrize("method", ["initialize", "ping", "logging/setLevel", "resources/subscribe",
                                    "resources/unsubscribe", "unknown/method"])
def test_removed_and_unknown_methods_are_404_method_not_found(dispatcher, method):
    out = call(dispatcher, method, id=500)
    assert out.http_status == 404
    assert out.response["error"]["code"] == -32601 and out.response["id"] == 500


def test_list_results_carry_result_type_and_cache_hints(dispatcher):
    for method, result_def in [("tools/list", "ListToolsResult"), ("prompts/list", "ListPromptsResult"),
                               ("resources/list", "ListResourcesResult"),
                               ("resources/templates/list", "ListResourceTemplatesResult")]:
        out = call(dispatcher, method)
        assert_valid_response(V, result_def, out.response)
        result = out.response["result"]
        assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private")
    out = call(dispatcher, "resources/read", {"uri": "test://static-text"})
    assert_valid_response(V, "ReadResourceResult", out.response)
    assert out.response["result"]["ttlMs"] == 0


def test_tools_list_order_is_deterministic(dispatcher):
    names = [[t["name"] for t in call(dispatcher, "tools/list").response["result"]["tools"]] for _ in range(3)]
    assert names[0] == names[1] == names[2]


@pytest.mark.parametrize("name", ["test_simple_text", "test_image_content", "test_audio_content",
                                  "test_embedded_resource", "test_multiple_content_types", "test_error_handling",
                                  "test_structured"])
def test_tool_results_are_complete_call_tool_results(dispatcher, name):
    out = tool(dispatcher, name)
    assert_valid_response(V, "CallToolResult", out.response)
    assert out.response["result"]["resultType"] == "complete"
    assert "ttlMs" not in out.response["result"]


def test_resource_not_found_is_32602_with_uri(dispatcher):
    uri = "test://nonexistent-resource-for-conformance-testing"
    out = call(dispatcher, "resources/read", {"uri": uri}, id=2)
    assert out.response == {"jsonrpc": "2.0", "id": 2,
                            "error": {"code": -32602, "message": "Resource not found", "data": {"uri": uri}}}


def test_prompts_and_completion(dispatcher):
    out = call(dispatcher, "prompts/get", {"name": "test_simple_prompt"})
    assert_valid_response(V, "GetPromptResult", out.response)
    out = call(dispatcher, "completion/complete", {"ref": {"type": "ref/prompt", "name": "p"},
                                                   "argument": {"name": "a", "value": "py"}})
    assert_valid_response(V, "CompleteResult", out.response)
    assert out.response["result"]["completion"]["values"] == ["python"]


def test_logs_only_with_a_meta_log_level(dispatcher):
    outbound = RecordingOutbound()
    tool_params = {"name": "test_tool_with_logging", "arguments": {}}
    call(dispatcher, "tools/call", dict(tool_params), outbound=outbound)
    assert outbound.notifications == []
    call(dispatcher, "tools/call", dict(tool_params), outbound=outbound,
         **{"io.modelcontextprotocol/logLevel": "info"})
    assert len(outbound.notifications) == 3
    for n in outbound.notifications:
        assert_valid(V, "LoggingMessageNotification", n)
    outbound = RecordingOutbound()
    call(dispatcher, "tools/call", dict(tool_params), outbound=outbound,
         **{"io.modelcontextprotocol/logLevel": "error"})
    assert outbound.notifications == []


def test_progress_notifications_validate(dispatcher):
    outbound = RecordingOutbound()
    out = call(dispatcher, "tools/call", {"name": "test_tool_with_progress", "arguments": {}}, outbound=outbound,
               progressToken="tok")
    assert out.response["result"]["resultType"] == "complete"
    assert [n["params"]["progress"] for n in outbound.notifications] == [0, 50, 100]
    for n in outbound.notifications:
        assert_valid(V, "ProgressNotification", n)


def test_server_to_client_requests_are_impossible_in_this_era(dispatcher):
    outbound = RecordingOutbound({"sampling/createMessage": {}})
    out = call(dispatcher, "tools/call", {"name": "test_sampling", "arguments": {"prompt": "x"}}, outbound=outbound)
    assert out.response["error"]["code"] == -32603
    assert outbound.requests == []


def test_undeclared_capability_is_32021_with_capabilities_object(dispatcher):
    out = call(dispatcher, "tools/call", {"name": "test_missing_capability", "arguments": {}}, caps={}, id=401)
    assert out.http_status == 400
    assert_valid(V, "MissingRequiredClientCapabilityError", out.response)
    assert out.response["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}


# --- multi round-trip (input_required) ---

def test_elicitation_round_trip(dispatcher):
    first = tool(dispatcher, "test_input_required_result_elicitation")
    assert_valid_response(V, "InputRequiredResult", first.response)
    result = first.response["result"]
    assert result["resultType"] == "input_required"
    assert result["inputRequests"]["user_name"]["method"] == "elicitation/create"
    assert isinstance(result["requestState"], str)
    second = tool(dispatcher, "test_input_required_result_elicitation",
                  inputResponses={"user_name": {"action": "accept", "content": {"name": "Alice"}}},
                  requestState=result["requestState"])
    assert_valid_response(V, "CallToolResult", second.response)
    assert second.response["result"]["content"] == [{"type": "text", "text": "Hello, Alice!"}]


def test_wrong_keys_re_request_and_extra_keys_are_ignored(dispatcher):
    again = tool(dispatcher, "test_input_required_result_elicitation",
                 inputResponses={"wrong_key": {"action": "accept", "content": {"data": "wrong"}}})
    assert again.response["result"]["resultType"] == "input_required"
    done = tool(dispatcher, "test_input_required_result_elicitation", inputResponses={
        "user_name": {"action": "accept", "content": {"name": "Alice"}},
        "unknown_extra_key": {"action": "accept", "content": {"foo": "bar"}}})
    assert done.response["result"]["resultType"] == "complete"


@pytest.mark.parametrize("responses", [None, {"user_name": 12345}, [1], "x"])
def test_malformed_input_responses_are_invalid_params(dispatcher, responses):
    out = tool(dispatcher, "test_input_required_result_elicitation", inputResponses=responses)
    assert out.response["error"]["code"] == -32602 and out.http_status == 400


def test_tampered_or_foreign_request_state_is_rejected(dispatcher):
    first = tool(dispatcher, "test_input_required_result_elicitation").response["result"]
    answer = {"user_name": {"action": "accept", "content": {"name": "A"}}}
    out = tool(dispatcher, "test_input_required_result_elicitation", inputResponses=answer,
               requestState=first["requestState"] + "-TAMPERED")
    assert out.response["error"]["code"] == -32602
    # A state minted for one tool is refused by another.
    out = tool(dispatcher, "test_input_required_result_multi_round", inputResponses=answer,
               requestState=first["requestState"])
    assert out.response["error"]["code"] == -32602
    # A different server key cannot verify it either.
    other = build_dispatcher(FakeBackend(), server_info=SERVER_INFO, state_key=b"another-key")
    out = tool(other, "test_input_required_result_elicitation", inputResponses=answer,
               requestState=first["requestState"])
    assert out.response["error"]["code"] == -32602


def test_multi_round_state_evolves(dispatcher):
    r1 = tool(dispatcher, "test_input_required_result_multi_round").response["result"]
    assert list(r1["inputRequests"]) == ["step1"]
    r2 = tool(dispatcher, "test_input_required_result_multi_round", requestState=r1["requestState"],
              inputResponses={"step1": {"action": "accept", "content": {"name": "Bo"}}}).response["result"]
    assert list(r2["inputRequests"]) == ["step2"] and r2["requestState"] != r1["requestState"]
    r3 = tool(dispatcher, "test_input_required_result_multi_round", requestState=r2["requestState"],
              inputResponses={"step2": {"action": "accept", "content": {"color": "blue"}}})
    assert r3.response["result"]["content"][0]["text"] == "Bo likes blue"


def test_input_requests_follow_declared_capabilities(dispatcher):
    out = call(dispatcher, "tools/call", {"name": "test_input_required_result_capabilities", "arguments": {}},
               caps={"sampling": {}})
    requests = out.response["result"]["inputRequests"]
    assert [r["method"] for r in requests.values()] == ["sampling/createMessage"]
    assert_valid_response(V, "InputRequiredResult", out.response)


def test_prompts_get_can_require_input(dispatcher):
    first = call(dispatcher, "prompts/get", {"name": "test_input_required_result_prompt"}).response["result"]
    assert first["resultType"] == "input_required" and "user_context" in first["inputRequests"]
    done = call(dispatcher, "prompts/get", {
        "name": "test_input_required_result_prompt", "requestState": first["requestState"],
        "inputResponses": {"user_context": {"action": "accept", "content": {"context": "ctx"}}}})
    assert_valid_response(V, "GetPromptResult", done.response)
    assert done.response["result"]["messages"][0]["content"]["text"] == "Context: ctx"


# --- subscriptions/listen ---

def test_listen_acknowledges_supported_filters_and_tags_notifications(dispatcher):
    out = call(dispatcher, "subscriptions/listen", {"notifications": {
        "toolsListChanged": True, "promptsListChanged": True, "resourceSubscriptions": ["test://watched-resource"]}},
        id="sub-1")
    assert out.kind == "listen" and out.response is None
    sub = out.subscription
    ack = sub.acknowledgement()
    assert_valid(V, "SubscriptionsAcknowledgedNotification", ack)
    # prompts.listChanged is not a server capability, so it is left out of the ack.
    assert ack["params"]["notifications"] == {"toolsListChanged": True,
                                              "resourceSubscriptions": ["test://watched-resource"]}
    assert ack["params"]["_meta"] == {"io.modelcontextprotocol/subscriptionId": "sub-1"}
    assert sub.wants("notifications/tools/list_changed")
    assert not sub.wants("notifications/prompts/list_changed")
    assert sub.wants("notifications/resources/updated", {"uri": "test://watched-resource"})
    assert not sub.wants("notifications/resources/updated", {"uri": "test://other"})
    changed = sub.notification("notifications/tools/list_changed")
    assert changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
    assert_valid(V, "ToolListChangedNotification", changed)
    assert_valid_response(V, "SubscriptionsListenResult", sub.final_response())


def test_listen_needs_a_filter(dispatcher):
    out = call(dispatcher, "subscriptions/listen", {})
    assert out.response["error"]["code"] == -32602


def test_input_required_is_never_returned_by_list_methods(dispatcher):
    for method in ("tools/list", "prompts/list"):
        assert call(dispatcher, method).response["result"]["resultType"] == "complete"
