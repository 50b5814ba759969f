"""Protocol revisions, the two eras, and how a message picks its era.

Handshake era (2025-03-26 .. 2025-11-25): ``initialize`` negotiates a version
that then applies to the whole session.
Stateless era (2026-07-28): every request names its version and client
capabilities in ``params._meta``; there is no session.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from .jsonrpc import Message, Notification, Request


class Era(str, enum.Enum):
    HANDSHAKE = "handshake"
    STATELESS = "stateless"


HANDSHAKE_VERSIONS: tuple[str, ...] = ("2025-03-26", "2025-06-18", "2025-11-25")
# The revision that defined HTTP+SSE; negotiated only where a dispatcher offers it (the /mcp/sse door).
HTTP_SSE_VERSION = "2024-11-05"
# Revisions without titles, output schemas, structured content or progress messages (added 2025-06-18).
BEFORE_2025_06_18 = frozenset({HTTP_SSE_VERSION, "2025-03-26"})
STATELESS_VERSIONS: tuple[str, ...] = ("2026-07-28",)
# Newest first: the order a server advertises in server/discover and -32022 data.
SUPPORTED_VERSIONS: tuple[str, ...] = STATELESS_VERSIONS[::-1] + HANDSHAKE_VERSIONS[::-1]
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
LATEST_STATELESS_VERSION = STATELESS_VERSIONS[-1]
# What a 2025-06-18+ server may assume when a client sends no MCP-Protocol-Version header.
DEFAULT_HEADERLESS_VERSION = "2025-03-26"

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"

# Methods that only exist in the stateless era; seeing one selects that era even
# when _meta is missing, so the client gets -32602 rather than "not initialized".
STATELESS_ONLY_METHODS = frozenset({"server/discover", "subscriptions/listen"})


def era_of_version(version: str) -> Era | None:
    if version in HANDSHAKE_VERSIONS:
        return Era.HANDSHAKE
    if version in STATELESS_VERSIONS:
        return Era.STATELESS
    return None


def negotiate_handshake_version(requested: Any, also: tuple[str, ...] = ()) -> str:
    """Version for an ``initialize`` reply: echo a supported handshake version (or one of ``also``, older
    revisions a transport offers), otherwise answer with our latest (the client then decides whether to continue)."""
    if isinstance(requested, str) and (requested in HANDSHAKE_VERSIONS or requested in also):
        return requested
    return LATEST_HANDSHAKE_VERSION


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value.strip()
    return None


def detect_era(message: Message, headers: Mapping[str, str] | None = None, *, has_session: bool = False) -> Era:
    """Decide which era a client message belongs to.

    Stateless when: params._meta carries a protocolVersion, or the method is a
    stateless-only one, or (without _meta) the MCP-Protocol-Version header names
    a version that is not a handshake version and the request arrived without a
    handshake session (``has_session``). Everything else (``initialize``,
    requests on a session, responses) is handshake era.
    """
    if isinstance(message, (Request, Notification)):
        meta = message.params.get("_meta")
        if isinstance(meta, dict) and META_PROTOCOL_VERSION in meta:
            return Era.STATELESS
        if message.method in STATELESS_ONLY_METHODS:
            return Era.STATELESS
        if message.method == "initialize" or has_session:
            return Era.HANDSHAKE
        header_version = _header(headers, "MCP-Protocol-Version")
        if header_version and header_version not in HANDSHAKE_VERSIONS and isinstance(message, Request):
            return Era.STATELESS
        if isinstance(meta, dict) and META_CLIENT_CAPABILITIES in meta and not header_version:
            return Era.STATELESS
    return Era.HANDSHAKE
