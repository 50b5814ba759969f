"""Capture what an MCP server sends over HTTP and check it against the official JSON Schemas.

``RecordingTransport`` wraps an httpx2 transport (the official SDK's client) and keeps
each exchange: the request's JSON-RPC body and every message of the response, whether a
JSON body or SSE ``data:`` frames. ``assert_all_valid`` validates each message against
the schema of the negotiated revision (tests.protocol.helpers.schema_dir: MCP_SCHEMA_DIR or the SDK's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import json
from typing import Any

import httpx2

from tests.protocol.helpers import assert_valid

# The result definition of each method's reply.
RESULT_DEFS = {
    "initialize": "InitializeResult", "ping": "EmptyResult", "server/discover": "DiscoverResult",
    "tools/list": "ListToolsResult", "tools/call": "CallToolResult", "resources/list": "ListResourcesResult",
    "resources/templates/list": "ListResourceTemplatesResult", "resources/read": "ReadResourceResult",
    "prompts/list": "ListPromptsResult", "prompts/get": "GetPromptResult", "completion/complete": "CompleteResult",
    "logging/setLevel": "EmptyResult", "resources/subscribe": "EmptyResult", "resources/unsubscribe": "EmptyResult",
}


def messages_from_body(content_type: str, body: bytes) -> list[dict[str, Any]]:
    if not body.strip():
        return []
    if content_type.startswith("text/event-stream"):
        found = []
        for event in body.decode().replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if data:
                found.append(json.loads(data))
        return found
    value = json.loads(body)
    return value if isinstance(value, list) else [value]


@dataclass
class Exchange:
    method: str
    url: str
    request: Any
    status: int
    content_type: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return messages_from_body(self.content_type, self.body)


class _TeeStream(httpx2.AsyncByteStream):
    def __init__(self, inner, exchange: Exchange, log: list[Exchange]):
        self.inner, self.exchange, self.log = inner, exchange, log
        self.chunks: list[bytes] = []
        self.logged = False

    async def __aiter__(self):
        async for chunk in self.inner:
            self.chunks.append(chunk)
            yield chunk

    async def aclose(self):
        if not self.logged:
            self.logged = True
            self.exchange.body = b"".join(self.chunks)
            self.log.append(self.exchange)
        await self.inner.aclose()


class RecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(self):
        self.inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request):
        raw = request.content if hasattr(request, "content") else b""
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw
        response = await self.inner.handle_async_request(request)
        exchange = Exchange(method=request.method, url=str(request.url), request=payload,
                            status=response.status_code, content_type=response.headers.get("content-type", ""),
                            headers=dict(response.headers))
        return httpx2.Response(response.status_code, headers=response.headers,
                               stream=_TeeStream(response.stream, exchange, self.exchanges),
                               extensions=response.extensions)

    async def aclose(self):
        await self.inner.aclose()


def negotiated_version(exchanges: list[Exchange]) -> str | None:
    for ex in exchanges:
        for message in ex.messages:
            result = message.get("result") or {}
            if "protocolVersion" in result and "serverInfo" in result:
                return result["protocolVersion"]
        if isinstance(ex.request, dict):
            meta = (ex.request.get("params") or {}).get("_meta") or {}
            if "io.modelcontextprotocol/protocolVersion" in meta:
                return meta["io.modelcontextprotocol/protocolVersion"]
    return None


def assert_message_valid(version: str, message: dict[str, Any], request_method: str | None) -> None:
    if "method" in message and "id" in message:
        assert_valid(version, "JSONRPCRequest", message)
        assert version < "2026", f"the stateless era has no server-to-client requests: {message}"
        assert_valid(version, "ServerRequest", message)
    elif "method" in message:
        assert_valid(version, "JSONRPCNotification", message)
        assert_valid(version, "ServerNotification", message)
    elif "error" in message:
        assert_valid(version, "JSONRPCError" if version < "2025-11-25" else "JSONRPCErrorResponse", message)
    else:
        assert_valid(version, "JSONRPCResponse" if version < "2025-11-25" else "JSONRPCResultResponse", message)
        result = message["result"]
        definition = RESULT_DEFS.get(request_method or "")
        if version >= "2026" and result.get("resultType") == "input_required":
            definition = "InputRequiredResult"
        if definition:
            assert_valid(version, definition, result)


def assert_all_valid(exchanges: list[Exchange], version: str | None = None) -> int:
    """Validate every message the server sent; returns how many were checked."""
    version = version or negotiated_version(exchanges)
    assert version, "no protocol version negotiated in these exchanges"
    checked = 0
    for ex in exchanges:
        method = ex.request.get("method") if isinstance(ex.request, dict) else None
        for message in ex.messages:
            assert_message_valid(version, message, method if message.get("id") == (
                ex.request.get("id") if isinstance(ex.request, dict) else None) else None)
            checked += 1
    return checked
