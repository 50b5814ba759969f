"""Two gunicorn processes behind one URL (a round-robin proxy): a handshake-era session survives both
switching processes on every request and a process restart in the middle of the session."""
from __future__ import annotations

from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import itertools
import json
import threading

import anyio
import httpx2
from mcp import Client
import mcp.types as mcp_types
from mcp.client.streamable_http import streamable_http_client
import pytest

from tickets.models import Ticket

from .wire import RecordingTransport, assert_all_valid

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class RoundRobinProxy:
    """Forwards each request to the next backend port in turn, streaming the answer (SSE included)."""

    def __init__(self, ports):
        self.ports = list(ports)
        self.turn = itertools.cycle(range(len(self.ports)))
        self.lock = threading.Lock()
        self.served: list[int] = []  # backend port of each forwarded request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy.lock:
                    port = proxy.ports[next(proxy.turn)]
                    proxy.served.append(port)
                upstream = HTTPConnection("127.0.0.1", port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Connection", "close")
                self.end_headers()
                while chunk := reply.read1(65536):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                upstream.close()
                self.close_connection = True

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def two_servers(server_factory):
    return server_factory(), server_factory()


async def _session(url, token, restart):
    recorder = RecordingTransport()
    asked = []

    async def confirm(context, params):
        asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, transport=recorder,
                              timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy",
                            raise_exceptions=True) as client:
        names = []
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            names += [t.name for t in page.tools]
            if not (cursor := page.next_cursor):
                break
        first = await client.call_tool("create_ticket", {"title": "Before restart", "description": "d"})
        await anyio.to_thread.run_sync(restart)
        second = await client.call_tool("create_ticket", {"title": "After restart", "description": "d"})
        await client.list_prompts()
    # A server-to-client request whose answer reaches the other process (conformance fixture endpoint).
    http = httpx2.AsyncClient(transport=recorder, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(f"{url}/mcp/conformance", http_client=http), mode="legacy",
                            elicitation_callback=confirm, raise_exceptions=True) as client:
        elicited = await client.call_tool("test_elicitation", {"message": "Who are you?"})
    return names, first, second, elicited, asked, recorder.exchanges


def test_a_session_spans_two_processes_and_a_restart(two_servers, demo, demo_token):
    a, b = two_servers
    proxy = RoundRobinProxy([a.port, b.port])

    def restart_a():
        a.stop()
        a.start()

    try:
        names, first, second, elicited, asked, exchanges = anyio.run(_session, proxy.url, demo_token, restart_a)
    finally:
        proxy.close()
    assert set(proxy.served) == {a.port, b.port}
    assert sorted(names) == sorted(demo)
    assert not first.is_error and not second.is_error
    assert Ticket.objects.filter(title__in=["Before restart", "After restart"]).count() == 2
    assert asked == ["Who are you?"]
    assert "ada@example.com" in elicited.content[0].text
    assert assert_all_valid(exchanges, "2025-11-25") > 5


def test_session_changes_on_one_process_are_seen_at_once_by_the_other(two_servers, demo):
    """Sessions are read through a shared Redis copy: a changed log level and an ended session must not
    be served stale by the process that did not make the change."""
    from .helpers import McpHttp, rpc

    a, b = two_servers
    on_a = McpHttp(f"{a.url}/mcp/conformance")
    on_b = McpHttp(f"{b.url}/mcp/conformance")
    try:
        on_b.session_id = on_a.initialize()

        def logged_lines():
            response, messages = on_b.post(rpc("tools/call", {"name": "test_logging_tool", "arguments": {}}))
            assert response.status_code == 200, response.text
            assert messages[-1]["result"]["content"][0]["text"] == "logged"
            return [m for m in messages if m.get("method") == "notifications/message"]

        assert len(logged_lines()) == 1  # debug by default in a handshake session: B emits the info line
        response, _ = on_a.post(rpc("logging/setLevel", {"level": "error"}))
        assert response.status_code == 200
        assert logged_lines() == []  # B sees the level A stored
        response, _ = on_b.post(rpc("logging/setLevel", {"level": "debug"}))
        assert response.status_code == 200
        assert len(logged_lines()) == 1

        assert on_a.http.delete(on_a.url, headers=on_a._headers()).status_code == 204
        response = on_b.post_raw(json.dumps(rpc("tools/list")))
        assert response.status_code == 404  # ended on A: gone on B at once
    finally:
        on_a.close()
        on_b.close()
