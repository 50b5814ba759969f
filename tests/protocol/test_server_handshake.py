"""MCP methods in the handshake era (2025-03-26 .. 2025-11-25), validated against each revision's schema."""
import pytest

from mcp_tools.protocol.server import build_dispatcher

from .fake_backend import FakeBackend
from .helpers import STATE_KEY, RecordingOutbound, assert_valid, assert_valid_error, assert_valid_response, note, rpc

VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]
SERVER_INFO = {"name": "django-mcp", "version": "0.1.0", "title": "Django MCP"}


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def dispatcher(backend):
    return build_dispatcher(backend, server_info=SERVER_INFO, state_key=STATE_KEY, instructions="Be nice",
                            page_size=5)


def open_session(dispatcher, version, capabilities=None):
    out = dispatcher.handle(rpc("initialize", {
        "protocolVersion": version, "capabilities": capabilities or {},
        "clientInfo": {"name": "t", "version": "1"}}))
    assert out.session_changed and out.session.protocol_version == version
    dispatcher.handle(note("notifications/initialized"), session=out.session)
    return out.session


@pytest.mark.parametrize("version", VERSIONS)
def test_initialize_negotiates_and_describes_the_server(dispatcher, version):
    out = dispatcher.handle(rpc("initialize", {"protocolVersion": version, "capabilities": {"sampling": {}},
                                               "clientInfo": {"name": "t", "version": "1"}}))
    assert_valid_response(version, "InitializeResult", out.response)
    result = out.response["result"]
    assert result["protocolVersion"] == version
    assert result["instructions"] == "Be nice"
    assert result["capabilities"] == {
        "tools": {"listChanged": True}, "resources": {"subscribe": True}, "prompts": {},
        "completions": {}, "logging": {}}
    assert out.session.client_capabilities == {"sampling": {}}
    assert out.session.initialized is False
    if version == "2025-03-26":
        assert result["serverInfo"] == {"name": "django-mcp", "version": "0.1.0"}
    else:
        assert result["serverInfo"]["title"] == "Django MCP"


def test_initialize_with_an_unknown_version_answers_the_latest(dispatcher):
    out = dispatcher.handle(rpc("initialize", {"protocolVersion": "2099-01-01", "capabilities": {},
                                               "clientInfo": {"name": "t", "version": "1"}}))
    assert out.response["result"]["protocolVersion"] == "2025-11-25"


def test_initialize_with_missing_fields_is_invalid_params(dispatcher):
    out = dispatcher.handle(rpc("initialize", {"protocolVersion": "2025-11-25"}))
    assert_valid_error("2025-11-25", out.response, -32602)
    assert out.session is None


@pytest.mark.parametrize("version", VERSIONS)
def test_ping_returns_empty_object(dispatcher, version):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("ping", id="123"), session=session)
    assert out.response == {"jsonrpc": "2.0", "id": "123", "result": {}}


@pytest.mark.parametrize("version", VERSIONS)
def test_tools_list_paginates_and_validates(dispatcher, version):
    session = open_session(dispatcher, version)
    names, tools, cursor = [], [], None
    while True:
        out = dispatcher.handle(rpc("tools/list", {"cursor": cursor} if cursor else {}), session=session)
        assert_valid_response(version, "ListToolsResult", out.response)
        result = out.response["result"]
        assert "resultType" not in result and "ttlMs" not in result
        names += [t["name"] for t in result["tools"]]
        tools += result["tools"]
        cursor = result.get("nextCursor")
        if not cursor:
            break
    assert names[:2] == ["test_simple_text", "test_image_content"]
    assert len(names) == len(set(names)) == 27  # 5 pages of 5, then one of 2
    (structured,) = [t for t in tools if t["name"] == "test_structured"]
    if version == "2025-03-26":
        assert "title" not in structured and "outputSchema" not in structured
    else:
        assert structured["title"] == "Structured" and "outputSchema" in structured


def test_a_bad_cursor_is_invalid_params(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("tools/list", {"cursor": "forged"}), session=session)
    assert_valid_error("2025-11-25", out.response, -32602)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tool, first_type", [
    ("test_simple_text", "text"), ("test_image_content", "image"), ("test_embedded_resource", "resource"),
    ("test_multiple_content_types", "text"),
])
def test_tools_call_fixtures(dispatcher, version, tool, first_type):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("tools/call", {"name": tool}), session=session)  # no "arguments": allowed
    assert_valid_response(version, "CallToolResult", out.response)
    assert out.response["result"]["content"][0]["type"] == first_type


def test_simple_text_has_the_fixture_text(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("tools/call", {"name": "test_simple_text", "arguments": {}}), session=session)
    assert out.response["result"] == {"content": [{"type": "text",
                                                   "text": "This is a simple text response for testing."}]}


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_audio_and_structured_results(dispatcher, version):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("tools/call", {"name": "test_audio_content"}), session=session)
    assert_valid_response(version, "CallToolResult", out.response)
    out = dispatcher.handle(rpc("tools/call", {"name": "test_structured"}), session=session)
    assert_valid_response(version, "CallToolResult", out.response)
    assert out.response["result"]["structuredContent"] == {"n": 7}


def test_structured_content_is_dropped_for_2025_03_26(dispatcher):
    session = open_session(dispatcher, "2025-03-26")
    out = dispatcher.handle(rpc("tools/call", {"name": "test_structured"}), session=session)
    assert "structuredContent" not in out.response["result"]
    assert out.response["result"]["content"] == [{"type": "text", "text": '{"n":7}'}]


def test_tool_errors_are_results_and_unknown_tools_are_protocol_errors(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("tools/call", {"name": "test_error_handling"}), session=session)
    assert_valid_response("2025-11-25", "CallToolResult", out.response)
    assert out.response["result"]["isError"] is True
    out = dispatcher.handle(rpc("tools/call", {"name": "no_such_tool"}), session=session)
    assert_valid_error("2025-11-25", out.response, -32602)
    out = dispatcher.handle(rpc("tools/call", {"name": "test_simple_text", "arguments": [1]}), session=session)
    assert_valid_error("2025-11-25", out.response, -32602)


def test_crashing_tool_is_internal_error_without_details(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("tools/call", {"name": "test_crash"}), session=session)
    assert_valid_error("2025-11-25", out.response, -32603)
    assert "secret" not in out.response["error"]["message"]


def test_logging_tool_sends_three_info_messages_until_level_raised(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    outbound = RecordingOutbound()
    dispatcher.handle(rpc("tools/call", {"name": "test_tool_with_logging"}), session=session, outbound=outbound)
    assert [n["params"]["data"] for n in outbound.notifications] == [
        "Tool execution started", "Tool processing data", "Tool execution completed"]
    for n in outbound.notifications:
        assert_valid("2025-11-25", "LoggingMessageNotification", n)

    out = dispatcher.handle(rpc("logging/setLevel", {"level": "warning"}), session=session)
    assert out.response["result"] == {} and out.session_changed and session.log_level == "warning"
    outbound = RecordingOutbound()
    dispatcher.handle(rpc("tools/call", {"name": "test_tool_with_logging"}), session=session, outbound=outbound)
    assert outbound.notifications == []
    bad = dispatcher.handle(rpc("logging/setLevel", {"level": "loud"}), session=session)
    assert_valid_error("2025-11-25", bad.response, -32602)


def test_progress_tool_reports_0_50_100(dispatcher):
    session = open_session(dispatcher, "2025-06-18")
    outbound = RecordingOutbound()
    out = dispatcher.handle(rpc("tools/call", {"name": "test_tool_with_progress", "_meta": {"progressToken": 7}}),
                            session=session, outbound=outbound)
    assert_valid_response("2025-06-18", "CallToolResult", out.response)
    assert [(n["params"]["progressToken"], n["params"]["progress"], n["params"]["total"])
            for n in outbound.notifications] == [(7, 0, 100), (7, 50, 100), (7, 100, 100)]
    for n in outbound.notifications:
        assert_valid("2025-06-18", "ProgressNotification", n)


def test_sampling_tool_sends_a_server_to_client_request(dispatcher):
    session = open_session(dispatcher, "2025-11-25", {"sampling": {}})
    outbound = RecordingOutbound({"sampling/createMessage": {
        "role": "assistant", "content": {"type": "text", "text": "Paris"}, "model": "m"}})
    out = dispatcher.handle(rpc("tools/call", {"name": "test_sampling", "arguments": {"prompt": "Capital?"}}),
                            session=session, outbound=outbound)
    assert out.response["result"]["content"] == [{"type": "text", "text": "LLM response: Paris"}]
    (request,) = outbound.requests
    assert_valid("2025-11-25", "CreateMessageRequest", request)
    assert request["params"]["messages"][0]["content"]["text"] == "Capital?"


def test_sampling_without_the_client_capability_is_refused(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    outbound = RecordingOutbound()
    out = dispatcher.handle(rpc("tools/call", {"name": "test_sampling", "arguments": {"prompt": "x"}}),
                            session=session, outbound=outbound)
    assert out.response["error"]["code"] == -32021
    assert out.response["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}
    assert outbound.requests == []


def test_an_input_required_tool_is_fulfilled_by_elicitation_in_the_handshake_era(dispatcher):
    session = open_session(dispatcher, "2025-06-18", {"elicitation": {}})
    outbound = RecordingOutbound({"elicitation/create": {"action": "accept",
                                                         "content": {"username": "ann", "email": "a@x"}}})
    out = dispatcher.handle(rpc("tools/call", {"name": "test_elicitation", "arguments": {"message": "Who?"}}),
                            session=session, outbound=outbound)
    assert_valid_response("2025-06-18", "CallToolResult", out.response)
    assert out.response["result"]["content"][0]["text"] == (
        'User response: action=accept, content={"username": "ann", "email": "a@x"}')
    (request,) = outbound.requests
    assert_valid("2025-06-18", "ElicitRequest", request)
    assert request["params"]["message"] == "Who?"


def test_multi_round_input_in_the_handshake_era_carries_state(dispatcher):
    session = open_session(dispatcher, "2025-11-25", {"elicitation": {}})
    answers = iter([{"action": "accept", "content": {"name": "Ann"}},
                    {"action": "accept", "content": {"color": "red"}}])
    outbound = RecordingOutbound({"elicitation/create": lambda msg: next(answers)})
    out = dispatcher.handle(rpc("tools/call", {"name": "test_input_required_result_multi_round"}),
                            session=session, outbound=outbound)
    assert out.response["result"]["content"][0]["text"] == "Ann likes red"
    assert len(outbound.requests) == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_resources(dispatcher, version):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("resources/list", {}), session=session)
    assert_valid_response(version, "ListResourcesResult", out.response)
    assert out.response["result"]["resources"][0]["uri"] == "test://static-text"
    out = dispatcher.handle(rpc("resources/templates/list", {}), session=session)
    assert_valid_response(version, "ListResourceTemplatesResult", out.response)
    for uri in ("test://static-text", "test://static-binary", "test://template/123/data"):
        out = dispatcher.handle(rpc("resources/read", {"uri": uri}), session=session)
        assert_valid_response(version, "ReadResourceResult", out.response)
        assert out.response["result"]["contents"][0]["uri"] == uri
    assert '"id": "123"' in out.response["result"]["contents"][0]["text"]


def test_missing_resource_is_32002_in_the_handshake_era(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    for uri in ("test://missing", "test://empty"):
        out = dispatcher.handle(rpc("resources/read", {"uri": uri}), session=session)
        assert_valid_error("2025-11-25", out.response, -32002)
        assert out.response["error"]["data"] == {"uri": uri}


def test_subscribe_and_unsubscribe_track_the_session(dispatcher, backend):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("resources/subscribe", {"uri": "test://watched-resource"}), session=session)
    assert out.response["result"] == {} and out.session_changed
    assert session.subscriptions == ["test://watched-resource"] == backend.subscribed
    out = dispatcher.handle(rpc("resources/unsubscribe", {"uri": "test://watched-resource"}), session=session)
    assert out.response["result"] == {} and session.subscriptions == [] and backend.subscribed == []


@pytest.mark.parametrize("version", VERSIONS)
def test_prompts(dispatcher, version):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("prompts/list", {}), session=session)
    assert_valid_response(version, "ListPromptsResult", out.response)
    out = dispatcher.handle(rpc("prompts/get", {"name": "test_prompt_with_arguments",
                                                "arguments": {"arg1": "hello", "arg2": "world"}}), session=session)
    assert_valid_response(version, "GetPromptResult", out.response)
    assert out.response["result"]["messages"][0]["content"]["text"] == \
        "Prompt with arguments: arg1='hello', arg2='world'"
    out = dispatcher.handle(rpc("prompts/get", {"name": "nope"}), session=session)
    assert_valid_error(version, out.response, -32602)


@pytest.mark.parametrize("version", VERSIONS)
def test_completion(dispatcher, version):
    session = open_session(dispatcher, version)
    out = dispatcher.handle(rpc("completion/complete", {
        "ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"},
        "argument": {"name": "arg1", "value": "par"}}), session=session)
    assert_valid_response(version, "CompleteResult", out.response)
    assert out.response["result"]["completion"]["values"] == ["paris", "park", "party"]
    bad = dispatcher.handle(rpc("completion/complete", {"ref": {"type": "x"}, "argument": {}}), session=session)
    assert bad.response["error"]["code"] == -32602


def test_stateless_only_methods_are_not_served_on_a_session(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    # server/discover selects the stateless era by itself, so a bare call fails on _meta.
    out = dispatcher.handle(rpc("server/discover", {}), session=session)
    assert out.response["error"]["code"] == -32602


def test_an_unsupported_version_header_on_a_session_is_400(dispatcher):
    session = open_session(dispatcher, "2025-11-25")
    out = dispatcher.handle(rpc("tools/list", {}), session=session, headers={"MCP-Protocol-Version": "2024-01-01"})
    assert out.http_status == 400 and out.response["error"]["code"] == -32600
    ok = dispatcher.handle(rpc("tools/list", {}), session=session, headers={"MCP-Protocol-Version": "2025-11-25"})
    assert "result" in ok.response
