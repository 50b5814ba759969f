"""The JSON limits every door applies, from settings: one place, so no door is looser than another.

``MCP_MAX_BODY_BYTES`` and ``MCP_MAX_JSON_DEPTH`` (settings.py) feed
:class:`mcp_tools.protocol.json_text.JsonLimits`; the REST pair reads bodies with
:func:`request_json`, the MCP doors (/mcp, /mcp/sse, stdio) with :func:`request_message`.
"""
from typing import Any

from django.conf import settings

from ..protocol.json_text import JsonLimits, json_parse
from ..protocol.jsonrpc import Message, parse_message


def request_limits() -> JsonLimits:
    return JsonLimits(max_bytes=settings.MCP_MAX_BODY_BYTES, max_depth=settings.MCP_MAX_JSON_DEPTH)


def request_json(raw: bytes | str) -> Any:
    """The JSON value of a REST body; raises ``JsonRejected`` (``.too_large`` for 413)."""
    return json_parse(raw, request_limits())


def request_message(raw: bytes | str) -> Message:
    """The JSON-RPC message of an MCP body or stdio line; raises ``InvalidMessage`` (-32700 / -32600)."""
    return parse_message(raw, request_limits())
