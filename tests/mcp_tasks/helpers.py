"""Raw JSON-RPC over HTTP for the tasks tests; every server message is checked against the official schema."""
from __future__ import annotations

from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
import time

from django.utils import timezone

from mcp_tools.models import ToolTask
from tests.protocol.helpers import assert_valid
from tests.protocol_http.helpers import McpHttp, rpc, stateless_meta
from tests.protocol_http.wire import messages_from_body

EXTENSION = "io.modelcontextprotocol/tasks"
WITH_TASKS = {"extensions": {EXTENSION: {}}}


def session(url: str, secret: str, version: str = "2025-11-25") -> McpHttp:
    """An initialized handshake session of ``version``."""
    client = McpHttp(url, secret)
    client.version = version
    response, (reply,) = client.post(rpc("initialize", {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "tests", "version": "1"}}))
    assert response.status_code == 200, response.text
    client.session_id = response.headers["Mcp-Session-Id"]
    client.initialize_result = reply["result"]
    client.post(rpc("notifications/initialized", id=None))
    return client


def call(client: McpHttp, method: str, params: dict, *, result_def: str | None = None) -> dict:
    """Send one request; validate the envelope (and the result against ``result_def``); return the envelope."""
    response = client.post_raw(json.dumps(rpc(method, params)))
    messages = messages_from_body(response.headers.get("content-type", ""), response.content)
    assert response.status_code in (200, 400, 404), response.text
    reply = messages[-1]
    if "error" in reply:
        assert_valid(client.version, "JSONRPCErrorResponse" if client.version >= "2025-11-25" else "JSONRPCError",
                     reply)
    else:
        assert_valid(client.version, "JSONRPCResultResponse" if client.version >= "2025-11-25"
                     else "JSONRPCResponse", reply)
        if result_def:
            assert_valid(client.version, result_def, reply["result"])
    return reply


def stateless(client: McpHttp, method: str, params: dict, *, name: str | None = None,
              capabilities: dict | None = None) -> tuple[int, dict]:
    client.version = "2026-07-28"
    params = {**params, "_meta": stateless_meta(capabilities)}
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    response = client.post_raw(json.dumps(rpc(method, params)), headers)
    reply = messages_from_body(response.headers.get("content-type", ""), response.content)[-1]
    assert_valid("2026-07-28", "JSONRPCErrorResponse" if "error" in reply else "JSONRPCResultResponse", reply)
    return response.status_code, reply


def working_task(tool, token) -> ToolTask:
    """A task that no worker will pick up (no message is enqueued): still working when cancelled."""
    now = timezone.now()
    return ToolTask.objects.create(tool=tool, tool_name=tool.name, token=token, arguments={}, ttl_s=600,
                                   created_at=now, expires_at=now + timedelta(seconds=600))


class SlowDownload:
    """Serves one JSON document in ``chunks`` pieces, ``pause`` seconds apart (with a Content-Length).

    ``outcome`` becomes "complete" when every byte was written, "aborted" when the client hung up.
    """

    def __init__(self, chunks: int = 8, pause: float = 0.4):
        self.document = json.dumps({"rows": ["x" * 200] * 40}).encode()
        self.outcome = None
        self.requests_started = 0
        document, outer = self.document, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests_started += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                size = -(-len(document) // chunks)
                try:
                    for start in range(0, len(document), size):
                        self.wfile.write(document[start:start + size])
                        self.wfile.flush()
                        time.sleep(pause)
                    outer.outcome = "complete"
                except (BrokenPipeError, ConnectionResetError):
                    outer.outcome = "aborted"

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
