"""Property-based fuzzing of the pure JSON-RPC parser (mcp_tools.protocol.jsonrpc)."""
import json

from hypothesis import example, given, strategies as st

from mcp_tools.protocol.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorResponse,
    InvalidMessage,
    Notification,
    Request,
    Response,
    error_response,
    parse_message,
)

from .profile import fuzz
from .strategies import INT64, bodies, ids, json_values, jsonrpc_like, texts


def parse_or_error(body):
    """parse_message's whole contract: a message object, or InvalidMessage with a JSON-RPC code."""
    try:
        message = parse_message(body)
    except InvalidMessage as exc:
        assert exc.code in (PARSE_ERROR, INVALID_REQUEST)
        assert isinstance(exc.message, str) and exc.message
        assert exc.request_id is None or isinstance(exc.request_id, (str, int))
        assert not isinstance(exc.request_id, bool)
        # The error envelope built from it is valid JSON-RPC and serialisable.
        envelope = json.loads(json.dumps(error_response(exc.request_id, exc.code, exc.message)))
        assert envelope["jsonrpc"] == "2.0" and set(envelope["error"]) == {"code", "message"}
        return exc
    assert isinstance(message, (Request, Notification, Response, ErrorResponse))
    return message


@fuzz
@given(bodies)
@example(b"[" * 100_000)  # nesting far beyond the recursion limit
@example(b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": NaN}')
@example(b"\xed\xa0\x80")  # an encoded lone surrogate is not UTF-8
def test_any_bytes_parse_or_fail_cleanly(body):
    parse_or_error(body)


@fuzz
@given(st.text(max_size=64))
def test_any_text_parse_or_fail_cleanly(text):
    parse_or_error(text)


@fuzz
@given(jsonrpc_like)
def test_jsonrpc_shaped_objects_are_classified_consistently(obj):
    result = parse_or_error(json.dumps(obj).encode())
    if isinstance(result, InvalidMessage):
        return
    assert obj.get("jsonrpc") == "2.0"
    if isinstance(result, (Request, Notification)):
        assert result.method == obj["method"] and isinstance(result.method, str) and result.method
        assert isinstance(result.params, dict)
        assert result.has_params == ("params" in obj)
        assert isinstance(result, Request) == ("id" in obj)
    if isinstance(result, (Request, Response)):
        assert result.id == obj["id"] and not isinstance(result.id, bool)


@fuzz
@given(st.one_of(INT64, texts), texts.filter(bool), st.dictionaries(texts, json_values, max_size=4))
def test_valid_requests_round_trip(request_id, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    message = parse_message(body.encode())
    assert message == Request(id=request_id, method=method, params=params, has_params=True)


@fuzz
@given(ids.filter(lambda value: not (isinstance(value, (str, int)) and not isinstance(value, bool))))
def test_request_with_unusable_id_is_invalid(bad_id):
    body = json.dumps({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
    result = parse_or_error(body)
    assert isinstance(result, InvalidMessage) and result.code == INVALID_REQUEST
    assert result.request_id is None


@fuzz
@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_non_object_bodies_are_invalid_requests(value):
    result = parse_or_error(json.dumps(value))
    assert isinstance(result, InvalidMessage) and result.code == INVALID_REQUEST
