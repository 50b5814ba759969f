"""Raw HTTP helpers for the Streamable HTTP tests (httpx, no SDK), with schema checks."""
from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

from .wire import assert_message_valid, messages_from_body

ACCEPT_BOTH = "application/json, text/event-stream"
HANDSHAKE = "2025-11-25"
STATELESS = "2026-07-28"
_ids = itertools.count(1)


def rpc(method: str, params: dict[str, Any] | None = None, *, id: Any = "auto") -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        message["id"] = next(_ids) if id == "auto" else id
    if params is not None:
        message["params"] = params
    return message


def stateless_meta(capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"io.modelcontextprotocol/protocolVersion": STATELESS,
            "io.modelcontextprotocol/clientCapabilities": capabilities or {},
            "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "1"}}


class McpHttp:
    """Posts JSON-RPC to one MCP URL and validates every message the server answers with."""

    def __init__(self, url: str, token: str | None = None, **headers: str):
        self.url = url
        self.headers = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json", **headers}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(timeout=30)
        self.session_id: str | None = None
        self.version = HANDSHAKE

    def close(self):
        self.http.close()

    def _headers(self, extra=None):
        headers = dict(self.headers)
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = self.version
        headers.update(extra or {})
        return {k: v for k, v in headers.items() if v is not None}

    def post_raw(self, content: bytes | str, headers=None) -> httpx.Response:
        return self.http.post(self.url, content=content, headers=self._headers(headers))

    def post(self, message: dict[str, Any], headers=None) -> tuple[httpx.Response, list[dict[str, Any]]]:
        response = self.post_raw(json.dumps(message), headers)
        messages = messages_from_body(response.headers.get("content-type", ""), response.content)
        for m in messages:
            assert_message_valid(self.version, m, message.get("method") if m.get("id") == message.get("id") else None)
        return response, messages

    def initialize(self, capabilities: dict[str, Any] | None = None) -> str:
        response, (reply,) = self.post(rpc("initialize", {
            "protocolVersion": HANDSHAKE, "capabilities": capabilities or {},
            "clientInfo": {"name": "tests", "version": "1"}}))
        assert response.status_code == 200, response.text
        self.session_id = response.headers["Mcp-Session-Id"]
        self.post(rpc("notifications/initialized", id=None))
        return self.session_id

    def stateless(self, method: str, params: dict[str, Any] | None = None, *, name: str | None = None,
                  capabilities: dict[str, Any] | None = None, headers=None):
        self.version = STATELESS
        params = dict(params or {})
        params["_meta"] = stateless_meta(capabilities)
        extra = {"MCP-Protocol-Version": STATELESS, "Mcp-Method": method}
        if name is not None:
            extra["Mcp-Name"] = name
        extra.update(headers or {})
        return self.post(rpc(method, params), extra)
