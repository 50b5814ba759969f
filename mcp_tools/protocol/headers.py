"""2026-07-28 Streamable HTTP header validation (pure: headers dict + parsed message in, error out).

Rules (spec basic/transports/streamable-http, "Server Validation"):
- ``MCP-Protocol-Version`` is required and must equal ``_meta[io.modelcontextprotocol/protocolVersion]``.
- ``Mcp-Method`` is required on every request and must equal the body ``method`` (values are case-sensitive).
- ``Mcp-Name`` is required for tools/call, prompts/get (``params.name``), resources/read (``params.uri``)
  and the tasks extension's tasks/get|update|cancel (``params.taskId``).
- Values are compared after trimming optional whitespace and decoding the ``=?base64?...?=`` sentinel.
Any failure is -32020 HeaderMismatch, HTTP 400. Header names are case-insensitive.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from .jsonrpc import HEADER_MISMATCH, INVALID_REQUEST, Message, ProtocolError, Request
from .versions import HANDSHAKE_VERSIONS, META_PROTOCOL_VERSION

NAME_FIELD_BY_METHOD: dict[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
    "tasks/get": "taskId",
    "tasks/update": "taskId",
    "tasks/cancel": "taskId",
}

_SENTINEL_PREFIX = "=?base64?"
_SENTINEL_SUFFIX = "?="


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup, value stripped of surrounding whitespace (RFC 9110 OWS)."""
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value.strip(" \t")
    return None


def decode_header_value(value: str) -> str:
    """Undo the ``=?base64?...?=`` sentinel encoding; plain values pass through.

    Raises ProtocolError(-32020) for a sentinel with invalid base64 or non-UTF-8 bytes,
    and for values with characters HTTP does not allow.
    """
    if value.startswith(_SENTINEL_PREFIX) and value.endswith(_SENTINEL_SUFFIX) and len(value) >= 11:
        encoded = value[len(_SENTINEL_PREFIX):-len(_SENTINEL_SUFFIX)]
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ProtocolError(HEADER_MISMATCH, "Header mismatch: invalid Base64 header value") from None
    if any(not (ch == "\t" or 0x20 <= ord(ch) <= 0x7E) for ch in value):
        raise ProtocolError(HEADER_MISMATCH, "Header mismatch: header value contains invalid characters")
    return value


def _mismatch(message: str) -> ProtocolError:
    return ProtocolError(HEADER_MISMATCH, f"Header mismatch: {message}")


def check_request_headers(headers: Mapping[str, str], message: Message) -> None:
    """Validate a stateless-era request's headers against its body; raise ProtocolError(-32020).

    Call it only for 2026-07-28 requests (see ``versions.detect_era``); notification
    POSTs have no header requirements in that revision. A body whose ``_meta`` lacks
    the protocol version is left for the dispatcher to reject with -32602.
    """
    if not isinstance(message, Request):
        return
    version = get_header(headers, "MCP-Protocol-Version")
    if not version:
        raise _mismatch("missing MCP-Protocol-Version header")

    method = get_header(headers, "Mcp-Method")
    if method is None or method == "":
        raise _mismatch("missing Mcp-Method header")
    if method != message.method:
        raise _mismatch(f"Mcp-Method header value {method!r} does not match body method {message.method!r}")

    field_name = NAME_FIELD_BY_METHOD.get(message.method)
    if field_name is not None:
        body_value: Any = message.params.get(field_name)
        raw = get_header(headers, "Mcp-Name")
        if raw is None:
            if body_value is not None:
                raise _mismatch(f"missing Mcp-Name header (body {field_name} is {body_value!r})")
        else:
            decoded = decode_header_value(raw)
            if not isinstance(body_value, str) or decoded != body_value:
                raise _mismatch(f"Mcp-Name header value {decoded!r} does not match body {field_name} {body_value!r}")

    meta = message.params.get("_meta")
    if isinstance(meta, dict) and META_PROTOCOL_VERSION in meta:
        if meta[META_PROTOCOL_VERSION] != version:
            raise _mismatch(
                f"MCP-Protocol-Version header {version!r} does not match _meta protocolVersion "
                f"{meta[META_PROTOCOL_VERSION]!r}"
            )


def check_param_headers(headers: Mapping[str, str], input_schema: Mapping[str, Any],
                        arguments: Mapping[str, Any]) -> None:
    """Validate ``Mcp-Param-{Name}`` headers for a tool whose inputSchema uses ``x-mcp-header``.

    Only top-level ``properties`` chains are followed (the spec forbids anything else).
    Raises ProtocolError(-32020) when a value in the body has no header, or they differ.
    """
    for path, header_name in _x_mcp_header_paths(input_schema):
        value: Any = arguments
        for step in path:
            value = value.get(step) if isinstance(value, Mapping) else None
        raw = get_header(headers, f"Mcp-Param-{header_name}")
        if value is None:
            continue
        if raw is None:
            raise _mismatch(f"missing Mcp-Param-{header_name} header")
        decoded = decode_header_value(raw)
        if isinstance(value, bool):
            expected_ok = decoded == ("true" if value else "false")
        elif isinstance(value, int):
            try:
                expected_ok = float(decoded) == float(value)
            except ValueError:
                expected_ok = False
        else:
            expected_ok = decoded == str(value)
        if not expected_ok:
            raise _mismatch(f"Mcp-Param-{header_name} header does not match the argument value")


def _x_mcp_header_paths(schema: Mapping[str, Any], prefix: tuple[str, ...] = ()):
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        return
    for name, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        header = sub.get("x-mcp-header")
        if isinstance(header, str) and header:
            yield prefix + (name,), header
        yield from _x_mcp_header_paths(sub, prefix + (name,))


def check_handshake_version_header(headers: Mapping[str, str], message: Message) -> None:
    """Handshake era (2025-06-18+ transports): an unsupported MCP-Protocol-Version header is a 400.

    A missing header is allowed (the server then assumes 2025-03-26). ``initialize``
    is exempt: its version is negotiated in the body.
    """
    if isinstance(message, Request) and message.method == "initialize":
        return
    version = get_header(headers, "MCP-Protocol-Version")
    if version and version not in HANDSHAKE_VERSIONS:
        raise ProtocolError(INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version!r}")
