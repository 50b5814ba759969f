import json

import pytest

from mcp_tools.protocol import jsonrpc
from mcp_tools.protocol.jsonrpc import (
    ErrorResponse,
    InvalidMessage,
    Notification,
    ProtocolError,
    Request,
    Response,
    parse_message,
)

from .helpers import assert_valid


def test_it_parses_a_request_with_params():
    msg = parse_message(b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"cursor":"x"}}')
    assert msg == Request(id=7, method="tools/list", params={"cursor": "x"}, has_params=True)


def test_it_parses_a_notification_without_params():
    msg = parse_message('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert isinstance(msg, Notification)
    assert msg.method == "notifications/initialized"
    assert msg.params == {} and msg.has_params is False


def test_it_parses_client_responses_and_errors():
    ok = parse_message(b'{"jsonrpc":"2.0","id":"srv-1","result":{"action":"accept"}}')
    assert ok == Response(id="srv-1", result={"action": "accept"})
    err = parse_message(b'{"jsonrpc":"2.0","id":"srv-2","error":{"code":-1,"message":"no"}}')
    assert err == ErrorResponse(id="srv-2", error={"code": -1, "message": "no"})


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
def test_it_rejects_unparseable_bodies_with_parse_error(body):
    with pytest.raises(InvalidMessage) as exc:
        parse_message(body)
    assert exc.value.code == jsonrpc.PARSE_ERROR


def test_it_rejects_batches_with_a_clear_message():
    with pytest.raises(InvalidMessage) as exc:
        parse_message(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]')
    assert exc.value.code == jsonrpc.INVALID_REQUEST
    assert "batch" in exc.value.message


@pytest.mark.parametrize(
    "obj, expected_id",
    [
        ({"jsonrpc": "1.0", "id": 3, "method": "ping"}, 3),
        ({"jsonrpc": "2.0", "id": 4, "method": ""}, 4),
        ({"jsonrpc": "2.0", "id": 5, "method": "ping", "params": [1]}, 5),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": 6}, 6),
        ("just a string", None),
    ],
)
def test_it_rejects_malformed_messages_as_invalid_request(obj, expected_id):
    with pytest.raises(InvalidMessage) as exc:
        parse_message(json.dumps(obj))
    assert exc.value.code == jsonrpc.INVALID_REQUEST
    assert exc.value.request_id == expected_id


def test_error_envelope_carries_a_null_id_when_unknown():
    # JSON-RPC 2.0 section 5: "id" is required, null when the request's id could not be read.
    env = jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "Parse error")
    assert "id" in env and env["id"] is None
    assert_valid("2025-11-25", "JSONRPCErrorResponse", env)
    assert_valid("2026-07-28", "JSONRPCErrorResponse", env)


def test_result_and_error_envelopes_have_the_wire_shape():
    assert jsonrpc.result_response(1, {}) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    env = jsonrpc.error_response("a", -32602, "bad", {"uri": "x"})
    assert env == {"jsonrpc": "2.0", "id": "a", "error": {"code": -32602, "message": "bad", "data": {"uri": "x"}}}
    assert_valid("2025-06-18", "JSONRPCError", env)


def test_protocol_error_serialises_without_null_data():
    assert ProtocolError(-32601, "nope").to_error() == {"code": -32601, "message": "nope"}
    assert ProtocolError(-32602, "bad", {"a": 1}).to_error()["data"] == {"a": 1}
