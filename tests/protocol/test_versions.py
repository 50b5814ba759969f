import pytest

from mcp_tools.protocol.jsonrpc import Notification, Request, Response
from mcp_tools.protocol.versions import (
    HANDSHAKE_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    SUPPORTED_VERSIONS,
    Era,
    detect_era,
    era_of_version,
    negotiate_handshake_version,
)

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}}


def test_supported_versions_are_newest_first_and_cover_both_eras():
    assert SUPPORTED_VERSIONS == ("2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26")
    assert era_of_version("2025-03-26") is Era.HANDSHAKE
    assert era_of_version("2026-07-28") is Era.STATELESS
    assert era_of_version("2024-11-05") is None


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
def test_negotiation_echoes_a_supported_handshake_version(version):
    assert negotiate_handshake_version(version) == version


@pytest.mark.parametrize("requested", ["2024-11-05", "2026-07-28", "garbage", None, 5])
def test_negotiation_answers_latest_handshake_version_for_anything_else(requested):
    assert negotiate_handshake_version(requested) == LATEST_HANDSHAKE_VERSION == "2025-11-25"


def test_meta_protocol_version_selects_the_stateless_era():
    assert detect_era(Request(1, "tools/list", {"_meta": META})) is Era.STATELESS
    # Even for a removed method: the era decides that `initialize` is then unknown.
    assert detect_era(Request(1, "initialize", {"_meta": META})) is Era.STATELESS


@pytest.mark.parametrize("method", ["server/discover", "subscriptions/listen"])
def test_stateless_only_methods_select_the_stateless_era_without_meta(method):
    assert detect_era(Request(1, method, {})) is Era.STATELESS


def test_initialize_and_plain_session_requests_are_handshake_era():
    assert detect_era(Request(1, "initialize", {"protocolVersion": "2025-11-25"})) is Era.HANDSHAKE
    assert detect_era(Request(2, "tools/list", {}), {"MCP-Protocol-Version": "2025-11-25"}) is Era.HANDSHAKE
    assert detect_era(Request(2, "tools/list", {})) is Era.HANDSHAKE
    assert detect_era(Notification("notifications/initialized")) is Era.HANDSHAKE
    assert detect_era(Response(1, {})) is Era.HANDSHAKE


def test_a_non_handshake_version_header_selects_the_stateless_era():
    assert detect_era(Request(1, "tools/list", {}), {"mcp-protocol-version": " 2026-07-28 "}) is Era.STATELESS


def test_a_known_session_keeps_requests_in_the_handshake_era():
    msg = Request(1, "tools/list", {})
    assert detect_era(msg, {"MCP-Protocol-Version": "2024-01-01"}, has_session=True) is Era.HANDSHAKE
    assert detect_era(Request(1, "tools/list", {"_meta": META}), has_session=True) is Era.STATELESS
