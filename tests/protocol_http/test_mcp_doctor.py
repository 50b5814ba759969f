"""``manage.py mcp_doctor`` against the product (real gunicorn, both eras and HTTP+SSE) and against
local servers that each have one classic fault: 406 to GET, a redirect of /mcp to /mcp/, every Origin refused."""
from __future__ import annotations

import io
import json

from django.core.management import call_command
import httpx
import pytest

from mcp_tools.doctor import FAIL, PASS, Doctor, render_text
from mcp_tools.models import ClientConnection, ConnectionRefusal

from ..helpers import LocalHttpServer, wait_until

@pytest.fixture(scope="module")
def mcp_server(server_factory):
    """The product, writing its Connections rows from the flusher thread (as in production), not per request."""
    return server_factory(MCP_CONNECTION_LOG_FLUSH_MS="200")


HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "content-encoding"}


def _steps(report) -> dict[str, object]:
    return {step.name: step for step in report.steps}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_healthy_server_passes_every_step_in_both_eras_and_over_http_sse(mcp_server, demo, demo_token):
    report = Doctor(f"{mcp_server.url}/mcp", headers=_bearer(demo_token)).run()
    steps = _steps(report)

    assert report.ok, render_text(report)
    for name in ("dns", "tcp", "health", "unauthenticated", "oauth-metadata", "oauth-server", "credentials",
                 "origin", "handshake", "stateless", "get-stream", "http+sse", "tools/call"):
        assert steps[name].status == PASS, render_text(report)
    assert "protocol 2025-11-25" in steps["handshake"].summary
    assert "protocol 2026-07-28" in steps["stateless"].summary
    assert "/mcp/sse" in steps["http+sse"].summary
    assert 'resource_metadata="' in steps["unauthenticated"].summary
    assert steps["tools/call"].summary.startswith("echo")  # the read-only tool that needs no arguments
    # The doctor's own unauthenticated probe is on the Connections page, under its client name, and so are
    # its successful sessions (written by the server's flusher thread).
    refused = wait_until(lambda: ConnectionRefusal.objects.filter(reason="no_credential",
                                                                  client_name="mcp-doctor").first())
    assert refused.transport == "streamable-http" and refused.client_version == "1"
    wait_until(lambda: ClientConnection.objects.filter(client_name="mcp-doctor", transport="streamable-http")
               .exists())


def test_a_refused_token_fails_with_its_cause_and_exit_status_1(mcp_server):
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("mcp_doctor", f"{mcp_server.url}/mcp", "--token", "mcp_zzzzzzzz_" + "x" * 43, "--json",
                     stdout=out)

    assert exited.value.code == 1
    report = json.loads(out.getvalue())
    assert report["ok"] is False
    credentials = next(step for step in report["steps"] if step["name"] == "credentials")
    assert credentials["status"] == FAIL and "Invalid API token" in credentials["cause"]
    assert "token" in credentials["fix"].lower()


def test_the_command_exits_0_and_prints_one_line_per_step_for_a_healthy_server(mcp_server, demo, demo_token):
    out = io.StringIO()
    call_command("mcp_doctor", f"{mcp_server.url}/mcp", "--token", demo_token, "--tool", "echo",
                 "--arguments", '{"text": "hello"}', stdout=out)

    text = out.getvalue()
    assert "PASS  tools/call" in text and "hello" in text
    assert "FAIL" not in text
    assert text.rstrip().endswith("Result: every step a client needs passed.")


def _proxy(upstream: str, fault: str) -> LocalHttpServer:
    """Forward to the product, with one fault: 'get-406', 'redirect' or 'origin'."""
    client = httpx.Client(base_url=upstream, timeout=30)

    def handle(method, path, headers, body):
        if fault == "origin" and any(k.lower() == "origin" for k in headers):
            return 403, {"Content-Type": "text/plain"}, b"Forbidden origin"
        if fault == "redirect" and path == "/mcp":
            return 308, {"Location": "/mcp/"}, b""
        if method == "GET" and path.rstrip("/") == "/mcp":
            return (406, {"Content-Type": "text/plain"}, b"Not Acceptable") if fault == "get-406" else (405, {}, b"")
        if method == "GET" and not (path == "/health" or path.startswith("/.well-known/")):
            return 404, {}, b""
        forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        answer = client.request(method, "/mcp" if path == "/mcp/" else path, content=body, headers=forwarded)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        return answer.status_code, kept, answer.content

    return LocalHttpServer(handle)


def test_a_server_answering_406_to_get_is_named(mcp_server, demo, demo_token):
    with _proxy(mcp_server.url, "get-406") as proxy:
        report = Doctor(f"{proxy.url}/mcp", headers=_bearer(demo_token)).run()
    step = _steps(report)["get-stream"]

    assert not report.ok
    assert step.status == FAIL and "406" in step.summary
    assert "405" in step.fix and "text/event-stream" in step.fix


def test_a_server_redirecting_mcp_to_mcp_slash_is_named(mcp_server, demo, demo_token):
    with _proxy(mcp_server.url, "redirect") as proxy:
        report = Doctor(f"{proxy.url}/mcp", headers=_bearer(demo_token)).run()
        healed = Doctor(f"{proxy.url}/mcp/", headers=_bearer(demo_token)).run()
    step = _steps(report)["unauthenticated"]

    assert not report.ok
    assert step.status == FAIL and "308" in step.summary and "redirects" in step.cause
    assert f"{proxy.url}/mcp/" in step.fix
    assert _steps(healed)["handshake"].status == PASS  # the URL the fix names works


def test_a_server_refusing_every_origin_is_named(mcp_server, demo, demo_token):
    with _proxy(mcp_server.url, "origin") as proxy:
        report = Doctor(f"{proxy.url}/mcp", headers=_bearer(demo_token)).run()
    steps = _steps(report)

    assert not report.ok
    assert steps["origin"].status == FAIL and "Origin" in steps["origin"].cause
    assert "allowed origins" in steps["origin"].fix
    assert steps["handshake"].status == PASS  # non-browser clients still get through


def test_nothing_listening_fails_at_tcp_with_the_fix():
    from ..helpers import free_port

    report = Doctor(f"http://127.0.0.1:{free_port()}/mcp").run()
    assert [(s.name, s.status) for s in report.steps] == [("dns", PASS), ("tcp", FAIL)]
    assert "listens" in report.steps[-1].cause
