"""The dispatcher on its own: routing, the error boundary, capabilities, outbound hooks."""
import logging

import pytest

from mcp_tools.protocol.context import InputRequired, RequestContext, SessionState, elicitation_request
from mcp_tools.protocol.dispatcher import Dispatcher, http_status_for_error
from mcp_tools.protocol.jsonrpc import ProtocolError
from mcp_tools.protocol.versions import Era

from .helpers import STATE_KEY, RecordingOutbound, assert_valid, note, rpc

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}
SESSION = SessionState(protocol_version="2025-11-25", client_capabilities={}, client_info={"name": "c", "version": "1"},
                       initialized=True)


def make(**kw) -> Dispatcher:
    return Dispatcher(server_info={"name": "srv", "version": "1.0"}, state_key=STATE_KEY, **kw)


def test_it_routes_to_the_registered_handler():
    d = make()
    seen = []
    d.register("tools/list", lambda ctx: seen.append(ctx) or {"tools": []})
    out = d.handle(rpc("tools/list", {}, id=9), session=SESSION)
    assert out.response == {"jsonrpc": "2.0", "id": 9, "result": {"tools": []}}
    assert out.http_status == 200
    assert seen[0].era is Era.HANDSHAKE and seen[0].protocol_version == "2025-11-25"


def test_unknown_method_is_method_not_found_and_404_when_stateless():
    d = make()
    out = d.handle(rpc("nope/nope", {}), session=SESSION)
    assert out.response["error"]["code"] == -32601 and out.http_status == 200
    out = d.handle(rpc("nope/nope", {"_meta": META}, id=601))
    assert out.response["error"]["code"] == -32601 and out.http_status == 404
    assert out.response["id"] == 601


def test_a_method_registered_for_one_era_is_unknown_in_the_other():
    d = make()
    d.register("ping", lambda ctx: {}, eras=[Era.HANDSHAKE])
    assert "result" in d.handle(rpc("ping"), session=SESSION).response
    out = d.handle(rpc("ping", {"_meta": META}))
    assert out.response["error"]["code"] == -32601


def test_unexpected_exceptions_become_a_generic_internal_error(caplog):
    d = make()

    def boom(ctx):
        raise KeyError("db password is hunter2")

    d.register("tools/list", boom)
    with caplog.at_level(logging.ERROR, logger="mcp_tools.protocol"):
        out = d.handle(rpc("tools/list", {}, id=3), session=SESSION, correlation_id="ref123")
    err = out.response["error"]
    assert err["code"] == -32603
    assert "hunter2" not in str(out.response) and "Traceback" not in str(out.response)
    assert err["data"] == {"ref": "ref123"}
    assert "ref123" in caplog.text and "hunter2" in caplog.text  # the log keeps the detail
    assert_valid("2025-11-25", "JSONRPCErrorResponse", out.response)


def test_protocol_errors_keep_code_message_and_data():
    d = make()

    def bad(ctx):
        raise ProtocolError(-32602, "Invalid params: x", {"field": "x"})

    d.register("tools/call", bad)
    out = d.handle(rpc("tools/call", {"name": "a"}), session=SESSION)
    assert out.response["error"] == {"code": -32602, "message": "Invalid params: x", "data": {"field": "x"}}


def test_parse_errors_and_batches_get_400():
    d = make()
    out = d.handle(b"{oops")
    assert out.response["error"]["code"] == -32700 and out.http_status == 400
    out = d.handle(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]')
    assert out.response["error"]["code"] == -32600 and "batch" in out.response["error"]["message"]


def test_handshake_requests_without_a_session_are_rejected():
    d = make()
    d.register("tools/list", lambda ctx: {"tools": []})
    out = d.handle(rpc("tools/list", {}))
    assert out.response["error"]["code"] == -32600 and out.http_status == 400


def test_capabilities_follow_registered_methods():
    d = make(extra_capabilities={"tools": {"listChanged": True}, "prompts": {"listChanged": True},
                                 "experimental": {"x": {}}})
    d.register("tools/list", lambda ctx: {})
    d.register("resources/read", lambda ctx: {})
    d.register("resources/subscribe", lambda ctx: {}, eras=[Era.HANDSHAKE])
    d.register("logging/setLevel", lambda ctx: {}, eras=[Era.HANDSHAKE])
    d.register("completion/complete", lambda ctx: {})
    assert d.capabilities(Era.HANDSHAKE) == {
        "tools": {"listChanged": True}, "resources": {"subscribe": True}, "logging": {}, "completions": {},
        "experimental": {"x": {}},
    }
    # prompts were not registered: the extra flag does not invent the feature.
    assert "prompts" not in d.capabilities(Era.STATELESS)
    assert d.capabilities(Era.STATELESS)["resources"] == {}


def test_notifications_are_accepted_with_202_and_unknown_ones_ignored():
    d = make()
    seen = []
    d.register_notification("notifications/roots/list_changed", lambda ctx: seen.append(ctx.method))
    out = d.handle(note("notifications/roots/list_changed"), session=SESSION)
    assert out.kind == "accepted" and out.http_status == 202 and out.response is None
    assert seen == ["notifications/roots/list_changed"]
    assert d.handle(note("notifications/whatever")).http_status == 202


def test_cancelled_notification_surfaces_the_request_id():
    out = make().handle(note("notifications/cancelled", {"requestId": "r-7", "reason": "user"}))
    assert out.cancelled_request_id == "r-7"


def test_initialized_notification_marks_the_session():
    session = SessionState(protocol_version="2025-06-18")
    out = make().handle(note("notifications/initialized"), session=session)
    assert session.initialized is True and out.session_changed is True


def test_client_responses_are_handed_back_for_correlation():
    out = make().handle(b'{"jsonrpc":"2.0","id":"srv-1","result":{"action":"decline"}}')
    assert out.kind == "accepted" and out.client_response.id == "srv-1"


def test_handlers_can_emit_progress_and_logs_through_the_outbound():
    d = make()

    def work(ctx: RequestContext):
        assert ctx.report_progress(50, 100, "half") is True
        ctx.log("debug", "too chatty")
        ctx.log("error", {"msg": "bad"}, logger="tool")
        return {"content": []}

    d.register("tools/call", work)
    session = SessionState(protocol_version="2025-11-25", log_level="warning")
    outbound = RecordingOutbound()
    out = d.handle(rpc("tools/call", {"name": "x", "_meta": {"progressToken": "p1"}}), session=session,
                   outbound=outbound)
    assert "result" in out.response
    assert [n["method"] for n in outbound.notifications] == ["notifications/progress", "notifications/message"]
    progress, log = outbound.notifications
    assert progress["params"] == {"progressToken": "p1", "progress": 50, "total": 100, "message": "half"}
    assert log["params"] == {"level": "error", "data": {"msg": "bad"}, "logger": "tool"}
    assert_valid("2025-11-25", "ProgressNotification", progress)
    assert_valid("2025-11-25", "LoggingMessageNotification", log)


def test_no_progress_without_a_token_and_nothing_after_cancel():
    d = make()
    outbound = RecordingOutbound()

    def work(ctx):
        assert ctx.report_progress(1) is False
        outbound.cancelled = True
        ctx.log("error", "late")
        return {"content": []}

    d.register("tools/call", work)
    d.handle(rpc("tools/call", {"name": "x"}), session=SESSION, outbound=outbound)
    assert outbound.notifications == []


def test_input_required_from_a_non_mrtr_method_is_an_internal_error():
    d = make()
    d.register("tools/list", lambda ctx: InputRequired({"a": elicitation_request("?", {"type": "object"})}))
    out = d.handle(rpc("tools/list", {"_meta": META}))
    assert out.response["error"]["code"] == -32603


def test_non_dict_results_are_an_internal_error():
    d = make()
    d.register("tools/list", lambda ctx: ["not", "a", "dict"])
    assert d.handle(rpc("tools/list", {}), session=SESSION).response["error"]["code"] == -32603


@pytest.mark.parametrize("code, era, status", [
    (-32601, Era.STATELESS, 404), (-32602, Era.STATELESS, 400), (-32020, Era.STATELESS, 400),
    (-32021, Era.STATELESS, 400), (-32022, Era.STATELESS, 400), (-32603, Era.STATELESS, 200),
    (-32601, Era.HANDSHAKE, 200), (-32600, Era.HANDSHAKE, 400), (-32700, Era.STATELESS, 400),
])
def test_http_status_mapping(code, era, status):
    assert http_status_for_error(code, era) == status
