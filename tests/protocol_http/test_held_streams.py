"""Held streams cannot starve the server: caps answer 503 + Retry-After, /health always answers, and a client
that disconnects frees its stream within a second. Real gunicorn (gthread, 10 threads), raw sockets."""
from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from mcp_tools.transports.held_streams import POLL_S
from tests.helpers import wait_until
from tests.protocol_http.helpers import STATELESS, rpc, stateless_meta

THREADS, STREAM_WORKERS, RESERVE, PER_TOKEN = 10, 4, 2, 2
PROCESS_CAP = THREADS - STREAM_WORKERS - RESERVE  # 4: what the server must derive from its threads
# A freed stream is noticed at the next poll; allow one poll more and the request round trip.
FREED_WITHIN_S = 2 * POLL_S + 0.5


@pytest.fixture(scope="module")
def server(server_factory):
    return server_factory(MCP_STREAM_WORKERS=str(STREAM_WORKERS), MCP_THREAD_RESERVE=str(RESERVE),
                          MCP_HELD_STREAMS_PER_TOKEN=str(PER_TOKEN), MCP_LISTEN_MAX_STREAMS="100",
                          MCP_SSE_PING_INTERVAL_S="15")


class Held:
    """One raw HTTP request on its own socket, read up to the end of its headers (and first event if 200)."""

    def __init__(self, base: str, method: str, path: str, headers: dict[str, str], body: bytes = b""):
        parts = urlsplit(base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}",
                 *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(body)}", "", ""]
        self.sock.sendall("\r\n".join(lines).encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, self.rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        if self.status != 200:
            while len(self.rest) < int(self.headers.get("content-length", 0)):
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                self.rest += chunk
        else:
            while b"\n\n" not in self.rest:  # the stream's first event: it is really open
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                self.rest += chunk

    def close(self):
        self.sock.close()


def _sse(server, token):
    return Held(server.url, "GET", "/mcp/sse", {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})


def _listen(server, token):
    body = json.dumps(rpc("subscriptions/listen", {"notifications": {"toolsListChanged": True},
                                                   "_meta": stateless_meta()})).encode()
    return Held(server.url, "POST", "/mcp", {
        "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json", "MCP-Protocol-Version": STATELESS, "Mcp-Method": "subscriptions/listen"},
        body)


def _session_get(server, token):
    init = httpx.post(f"{server.url}/mcp", json=rpc("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "held", "version": "1"}}),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"})
    session_id = init.headers["Mcp-Session-Id"]
    return Held(server.url, "GET", "/mcp", {"Authorization": f"Bearer {token}", "Accept": "text/event-stream",
                                            "Mcp-Session-Id": session_id, "MCP-Protocol-Version": "2025-11-25"})


def _health_ms(server) -> float:
    started = time.monotonic()
    response = httpx.get(f"{server.url}/health", timeout=5)
    assert response.status_code == 200
    return (time.monotonic() - started) * 1000


def test_caps_per_token_and_per_process_answer_503_and_health_still_answers(server, demo, issue_token):
    a, b, c = (issue_token(name=n, all_tools=True).secret for n in ("held-a", "held-b", "held-c"))
    held = []
    try:
        held += [_sse(server, a), _sse(server, a)]
        assert [h.status for h in held] == [200, 200]
        over_token = _sse(server, a)
        held.append(over_token)
        assert over_token.status == 503 and int(over_token.headers["retry-after"]) > 0
        assert b"credential" in over_token.rest

        held += [_session_get(server, b), _listen(server, b)]  # every kind counts against the process
        assert [h.status for h in held[-2:]] == [200, 200]
        for refused in (_sse(server, c), _listen(server, c), _session_get(server, c)):
            held.append(refused)
            assert refused.status == 503 and int(refused.headers["retry-after"]) > 0, refused.rest
            assert b"maximum of open streams" in refused.rest

        # The reserve: with every stream slot taken, /health and ordinary calls still get a thread.
        for _ in range(20):
            _health_ms(server)
        call = httpx.post(f"{server.url}/mcp", json=rpc("tools/call", {
            "name": "echo", "arguments": {"text": "still served"}, "_meta": stateless_meta()}), headers={
            "Authorization": f"Bearer {c}", "Accept": "application/json", "MCP-Protocol-Version": STATELESS,
            "Mcp-Method": "tools/call", "Mcp-Name": "echo"}, timeout=10)
        assert call.status_code == 200 and "still served" in call.text
    finally:
        for h in held:
            h.close()


@pytest.mark.parametrize("kind", ["sse", "listen", "get"])
def test_a_client_that_disconnects_frees_its_stream_within_a_second(server, demo, issue_token, kind):
    token = issue_token(name=f"leaver-{kind}", all_tools=True).secret
    open_one = {"sse": _sse, "listen": _listen, "get": _session_get}[kind]
    first, second = open_one(server, token), open_one(server, token)
    assert (first.status, second.status) == (200, 200)
    refused = open_one(server, token)
    assert refused.status == 503  # this token's cap is full
    refused.close()
    first.close()
    closed_at = time.monotonic()
    reopened = []

    def reopen() -> bool:
        attempt = open_one(server, token)
        reopened.append(attempt)
        return attempt.status == 200

    try:
        wait_until(reopen, timeout=FREED_WITHIN_S + 5, interval=0.05)
        # Well before the 15 s keep-alive: the server noticed the close itself.
        assert time.monotonic() - closed_at < FREED_WITHIN_S + 1.0
    finally:
        for h in [second, *reopened]:
            h.close()


def test_many_short_lived_streams_leave_health_fast(server, demo, issue_token):
    token = issue_token(name="short-lived", all_tools=True).secret
    for _ in range(16):
        wait_until(lambda: (h := _sse(server, token)).status == 200 and (h.close() or True),
                   timeout=FREED_WITHIN_S + 5, interval=0.05)
    assert _health_ms(server) < 1000
