"""`manage.py mcp_stdio` driven as a subprocess: by the official SDK client and by raw JSON lines."""
from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import anyio
from mcp import Client, StdioServerParameters
import pytest

from mcp_tools.models import AuditEvent
from tickets.models import Ticket

from .conftest import database_url_of_tests

REPO = Path(__file__).resolve().parents[2]


def _env(database_url):
    from django.conf import settings

    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "mcp_project.settings", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}


async def _sdk_session(params, mode):
    async with Client(params, mode=mode, raise_exceptions=True) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        created = await client.call_tool("create_ticket", {"title": f"From stdio {mode}", "description": "d"})
        failed = await client.call_tool("create_ticket", {"title": 1})
    return names, created, failed


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_the_sdk_client_talks_to_mcp_stdio(mode, demo, demo_token):
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp_stdio"], cwd=str(REPO),
                                   env={**_env(database_url_of_tests()), "MCP_TOKEN": demo_token})
    names, created, failed = anyio.run(_sdk_session, params, mode)
    assert "create_ticket" in names
    assert created.is_error is False and created.structured_content["title"] == f"From stdio {mode}"
    assert Ticket.objects.filter(title=f"From stdio {mode}").exists()
    assert failed.is_error is True
    assert set(AuditEvent.objects.values_list("transport", flat=True)) == {"stdio"}


def test_mcp_stdio_answers_line_by_line_and_survives_garbage(demo, demo_token):
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        "this is not json",
        [{"jsonrpc": "2.0", "id": 2, "method": "ping"}],
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    result = subprocess.run([sys.executable, "manage.py", "mcp_stdio", "--token", demo_token], cwd=REPO,
                            env=_env(database_url_of_tests()), input=stdin, capture_output=True, text=True, timeout=60)
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert replies[0]["result"]["protocolVersion"] == "2025-11-25"
    assert [r["error"]["code"] for r in replies[1:3]] == [-32700, -32600]
    assert replies[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}


def test_mcp_stdio_refuses_a_bad_token(db):
    result = subprocess.run([sys.executable, "manage.py", "mcp_stdio", "--token", "mcp_bad"], cwd=REPO,
                            env=_env(database_url_of_tests()), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Malformed API token" in result.stderr
    assert result.stdout == ""


class _StdioSession:
    """A running `manage.py mcp_stdio` driven line by line (a thread reads stdout, so reads can time out)."""

    def __init__(self, token: str):
        import queue
        import threading

        self.process = subprocess.Popen([sys.executable, "manage.py", "mcp_stdio"], cwd=REPO,
                                        env={**_env(database_url_of_tests()), "MCP_TOKEN": token},
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.lines = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def reply(self, timeout: float = 30) -> dict:
        return json.loads(self.lines.get(timeout=timeout))

    def call(self, request_id: int, title: str) -> dict:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                   "params": {"name": "create_ticket", "arguments": {"title": title, "description": "d"}}})
        return self.reply()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.mark.parametrize("change", ["revoked", "expired"])
def test_a_running_stdio_session_stops_when_its_token_is_revoked_or_expires(change, demo, issue_token):
    from django.utils import timezone

    from mcp_tools.models import ApiToken
    from mcp_tools.services.tokens import token_revoke

    issued = issue_token(name="stdio", all_tools=True)
    session = _StdioSession(issued.secret)
    try:
        session.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
        assert session.reply()["result"]["protocolVersion"] == "2025-11-25"
        session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        before = session.call(2, "Before")
        assert before["result"].get("isError", False) is False, before
        if change == "revoked":
            token_revoke(token=issued.token)
        else:
            token = ApiToken.objects.get(pk=issued.token.pk)  # as the admin's change form saves it
            token.expires_at = timezone.now()
            token.save(update_fields=["expires_at"])
        refused = session.call(3, "After")
        assert refused["id"] == 3 and refused["error"]["code"] == -32600
        assert ("revoked" if change == "revoked" else "expired") in refused["error"]["message"]
        assert session.process.wait(timeout=30) != 0
        assert "Session ended" in session.process.stderr.read()
    finally:
        session.close()
    assert list(Ticket.objects.filter(title__in=["Before", "After"]).values_list("title", flat=True)) == ["Before"]
    assert AuditEvent.objects.filter(tool_name="create_ticket").count() == 1
