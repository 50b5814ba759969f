"""Which requests may produce messages ahead of their response (the transport streams only those)."""
import pytest

from mcp_tools.protocol.dispatcher import may_send_before_response
from mcp_tools.protocol.jsonrpc import Request

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def call(meta=None):
    params = {"name": "echo", "arguments": {}}
    if meta is not None:
        params["_meta"] = meta
    return Request(id=1, method="tools/call", params=params)


def test_a_plain_stateless_call_cannot_send_anything_first():
    assert not may_send_before_response(call(META))


@pytest.mark.parametrize("extra", [{"progressToken": "p1"}, {"progressToken": 0},
                                   {"io.modelcontextprotocol/logLevel": "debug"}])
def test_a_stateless_call_asking_for_progress_or_logs_may(extra):
    assert may_send_before_response(call({**META, **extra}))


def test_every_handshake_era_call_may():
    assert may_send_before_response(call(), {"MCP-Protocol-Version": "2025-11-25"}, has_session=True)
    assert may_send_before_response(call({"progressToken": "p"}), has_session=True)
