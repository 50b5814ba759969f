"""JSON-RPC 2.0 wire messages: parsing, envelopes and error codes.

``parse_message`` accepts single messages only: 2025-06-18 and later revisions removed
batches, so an array body is an Invalid Request. The Streamable HTTP transport accepts
batches in sessions negotiated at 2025-03-26, which requires them, classifying each element
with ``message_from_obj``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .json_text import DEFAULT_LIMITS, JsonLimits, JsonRejected, json_parse

JSONRPC_VERSION = "2.0"

# Standard JSON-RPC codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# MCP-defined codes.
RESOURCE_NOT_FOUND = -32002  # handshake era (2025-xx); 2026-07-28 uses -32602 + data.uri
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

RequestId = Union[str, int]


class ProtocolError(Exception):
    """A failure that must reach the client as a JSON-RPC error object.

    Raise it anywhere below the dispatcher; the dispatcher is the only place that
    turns it into a response envelope.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err

    def __repr__(self) -> str:
        return f"ProtocolError({self.code}, {self.message!r}, data={self.data!r})"


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    has_params: bool = False


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    has_params: bool = False


@dataclass(frozen=True)
class Response:
    """A client's successful reply to a server-to-client request."""

    id: RequestId
    result: dict[str, Any]


@dataclass(frozen=True)
class ErrorResponse:
    """A client's error reply to a server-to-client request."""

    id: RequestId | None
    error: dict[str, Any]


Message = Union[Request, Notification, Response, ErrorResponse]


class InvalidMessage(ProtocolError):
    """Raised by :func:`parse_message`; carries the request id when it was readable."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


def _valid_id(value: Any) -> bool:
    # bool is an int subclass in Python but not a JSON-RPC id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_message(body: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Message:
    """Parse one raw HTTP/stdio body into a message object, or raise InvalidMessage.

    The JSON is read by :func:`json_text.json_parse` under ``limits`` (what every door accepts);
    anything it refuses is a Parse error (-32700) whose message says what and where.
    """
    try:
        data = json_parse(body, limits)
    except JsonRejected as exc:
        raise InvalidMessage(PARSE_ERROR, f"Parse error: {exc.reason}") from None
    return message_from_obj(data)


def message_from_obj(data: Any) -> Message:
    """Classify an already-decoded JSON value."""
    if isinstance(data, list):
        raise InvalidMessage(
            INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported; send one message per request"
        )
    if not isinstance(data, dict):
        raise InvalidMessage(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be an object")
    raw_id = data.get("id")
    req_id = raw_id if _valid_id(raw_id) else None
    if data.get("jsonrpc") != JSONRPC_VERSION:
        raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', req_id)

    if "method" in data:
        method = data["method"]
        if not isinstance(method, str) or not method:
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string', req_id)
        has_params = "params" in data
        params = data.get("params")
        if has_params and not isinstance(params, dict):
            # MCP params are always objects (by-name); positional arrays are not used.
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "params" must be an object', req_id)
        params = dict(params or {})
        if "id" not in data:
            return Notification(method=method, params=params, has_params=has_params)
        if not _valid_id(raw_id):
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer')
        return Request(id=raw_id, method=method, params=params, has_params=has_params)

    if "result" in data and "error" not in data:
        if not _valid_id(raw_id):
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: response "id" must be a string or an integer')
        result = data["result"]
        if not isinstance(result, dict):
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: "result" must be an object', req_id)
        return Response(id=raw_id, result=result)
    if "error" in data and "result" not in data:
        error = data["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), int) or not isinstance(
            error.get("message"), str
        ):
            raise InvalidMessage(INVALID_REQUEST, 'Invalid Request: malformed "error" object', req_id)
        return ErrorResponse(id=req_id, error=error)
    raise InvalidMessage(INVALID_REQUEST, "Invalid Request: not a request, notification or response", req_id)


def result_response(request_id: RequestId, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result}


def error_response(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """Error envelope. ``request_id`` None means the id could not be read (or there was no request).

    JSON-RPC 2.0 section 5 requires the ``id`` member, ``null`` when the request's id is unknown;
    clients that parse strictly (the Python SDK 2.x, and everything built on it) drop an error
    without one and show a generic "Server returned an error response" instead of our message.
    The 2025-11-25+ MCP schemas make ``id`` optional and do not list null; JSON-RPC's rule wins.
    """
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    envelope: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error}
    return envelope


def request_message(request_id: RequestId, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def notification_message(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params is not None:
        msg["params"] = params
    return msg
