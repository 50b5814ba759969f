import base64

import pytest

from mcp_tools.protocol.headers import check_param_headers, check_request_headers, decode_header_value
from mcp_tools.protocol.jsonrpc import HEADER_MISMATCH, Notification, ProtocolError, Request

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}


def call(name="test_simple_text"):
    return Request(1, "tools/call", {"name": name, "arguments": {}, "_meta": META})


def good_headers(**extra):
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "test_simple_text"}
    headers.update(extra)
    return headers


def assert_mismatch(headers, message):
    with pytest.raises(ProtocolError) as exc:
        check_request_headers(headers, message)
    assert exc.value.code == HEADER_MISMATCH
    return exc.value


def test_matching_headers_pass():
    assert check_request_headers(good_headers(), call()) is None


def test_header_names_are_case_insensitive_and_values_trimmed():
    headers = {"mcp-protocol-version": "2026-07-28", "MCP-METHOD": " tools/call ", "mcp-name": "  test_simple_text  "}
    assert check_request_headers(headers, call()) is None


def test_method_values_are_case_sensitive():
    err = assert_mismatch(good_headers(**{"Mcp-Method": "TOOLS/CALL"}), call())
    assert "Mcp-Method" in err.message


@pytest.mark.parametrize("drop", ["MCP-Protocol-Version", "Mcp-Method", "Mcp-Name"])
def test_missing_required_headers_are_rejected(drop):
    headers = good_headers()
    del headers[drop]
    assert_mismatch(headers, call())


def test_mcp_name_must_match_the_body_name_or_uri():
    assert_mismatch(good_headers(**{"Mcp-Name": "wrong_tool_name"}), call())
    read = Request(2, "resources/read", {"uri": "test://static-text", "_meta": META})
    ok = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/read", "Mcp-Name": "test://static-text"}
    assert check_request_headers(ok, read) is None
    assert_mismatch({**ok, "Mcp-Name": "test://other"}, read)


def test_mcp_name_may_be_base64_encoded():
    name = "outil_é"
    encoded = "=?base64?" + base64.b64encode(name.encode()).decode() + "?="
    assert check_request_headers(good_headers(**{"Mcp-Name": encoded}), call(name)) is None


def test_list_methods_need_no_mcp_name():
    msg = Request(3, "tools/list", {"_meta": META})
    assert check_request_headers({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}, msg) is None


def test_version_header_must_match_meta():
    err = assert_mismatch(good_headers(**{"MCP-Protocol-Version": "2025-11-25"}), call())
    assert "MCP-Protocol-Version" in err.message


def test_missing_meta_version_is_left_to_the_dispatcher():
    msg = Request(4, "server/discover", {})
    assert check_request_headers({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"}, msg) is None


def test_notifications_are_not_checked():
    assert check_request_headers({}, Notification("notifications/cancelled", {})) is None


@pytest.mark.parametrize("value", ["=?base64?not*base64?=", "=?base64?QQ?=", "=?base64?//79?="])
def test_invalid_base64_sentinels_are_rejected(value):
    with pytest.raises(ProtocolError) as exc:
        decode_header_value(value)
    assert exc.value.code == HEADER_MISMATCH


def test_plain_values_are_literal():
    assert decode_header_value("us-west1") == "us-west1"
    assert decode_header_value("=?base64?dXMtd2VzdDE=?=") == "us-west1"


SCHEMA = {"type": "object", "properties": {
    "region": {"type": "string", "x-mcp-header": "Region"},
    "limit": {"type": "integer", "x-mcp-header": "Limit"},
    "query": {"type": "string"},
}}


def test_param_headers_must_mirror_annotated_arguments():
    args = {"region": "us-west1", "limit": 42, "query": "select 1"}
    assert check_param_headers({"Mcp-Param-Region": "us-west1", "mcp-param-limit": "42.0"}, SCHEMA, args) is None
    with pytest.raises(ProtocolError):
        check_param_headers({"Mcp-Param-Limit": "42"}, SCHEMA, args)  # Region omitted while in body
    with pytest.raises(ProtocolError):
        check_param_headers({"Mcp-Param-Region": "eu", "Mcp-Param-Limit": "42"}, SCHEMA, args)


def test_param_headers_are_not_expected_for_absent_arguments():
    assert check_param_headers({}, SCHEMA, {"query": "x"}) is None


def test_handshake_era_rejects_an_unsupported_version_header_except_on_initialize():
    from mcp_tools.protocol.headers import check_handshake_version_header

    msg = Request(1, "tools/list", {})
    assert check_handshake_version_header({"MCP-Protocol-Version": "2025-06-18"}, msg) is None
    assert check_handshake_version_header({}, msg) is None
    with pytest.raises(ProtocolError) as exc:
        check_handshake_version_header({"mcp-protocol-version": "1999-01-01"}, msg)
    assert exc.value.code == -32600
    init = Request(1, "initialize", {"protocolVersion": "1999-01-01"})
    assert check_handshake_version_header({"MCP-Protocol-Version": "1999-01-01"}, init) is None
