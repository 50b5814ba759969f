"""The official Python SDK client (mcp==2.3.0) against a real gunicorn server, in both protocol eras.

Every message the server sends in these sessions is validated against the official
JSON Schema of the negotiated revision.
"""
from __future__ import annotations

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
import pytest

from tickets.models import Ticket

from .conftest import PAGE_SIZE
from .wire import RecordingTransport, assert_all_valid

MODES = ["legacy", "2026-07-28"]


def _client(url: str, recorder: RecordingTransport, token: str | None, mode: str) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, transport=recorder, timeout=httpx2.Timeout(30, read=60))
    return Client(streamable_http_client(url, http_client=http), mode=mode, raise_exceptions=True), http


async def _session(url, token, mode):
    recorder = RecordingTransport()
    client, http = _client(url, recorder, token, mode)
    pages, names = 0, []
    async with http, client:
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            pages += 1
            names += [tool.name for tool in page.tools]
            assert len(page.tools) <= PAGE_SIZE
            cursor = page.next_cursor
            if not cursor:
                break
        created = await client.call_tool("create_ticket", {
            "title": f"Printer on fire ({mode})", "description": "Smoke from tray 2", "priority": "high"})
        failed = await client.call_tool("database_query", {"query": "DELETE FROM users"})
        invalid = await client.call_tool("create_ticket", {"title": 42})
    return {"pages": pages, "names": names, "created": created, "failed": failed, "invalid": invalid,
            "exchanges": recorder.exchanges}


@pytest.mark.parametrize("mode", MODES)
def test_sdk_client_lists_pages_calls_tools_and_gets_errors(mode, mcp_server, demo, demo_token):
    outcome = anyio.run(_session, f"{mcp_server.url}/mcp", demo_token, mode)

    assert outcome["pages"] >= 3  # the client walked the cursor pages
    assert sorted(outcome["names"]) == sorted(demo)  # every real tool, each once
    created = outcome["created"]
    assert created.is_error is False
    ticket_id = created.structured_content["id"]
    assert Ticket.objects.filter(pk=ticket_id, title=f"Printer on fire ({mode})").exists()
    assert created.content[0].type == "text" and str(ticket_id) in created.content[0].text
    assert outcome["failed"].is_error is True
    assert outcome["invalid"].is_error is True  # input validation errors are tool execution errors
    assert "Invalid arguments" in outcome["invalid"].content[0].text
    checked = assert_all_valid(outcome["exchanges"], "2025-11-25" if mode == "legacy" else mode)
    assert checked >= outcome["pages"] + 3


async def _connect_without_token(url, mode):
    recorder = RecordingTransport()
    client, http = _client(url, recorder, None, mode)
    async with http:
        with pytest.raises(Exception):
            async with client:
                await client.list_tools()
    return recorder.exchanges


@pytest.mark.parametrize("mode", MODES)
def test_sdk_client_is_refused_without_a_token(mode, mcp_server, demo):
    exchanges = anyio.run(_connect_without_token, f"{mcp_server.url}/mcp", mode)
    assert exchanges and all(ex.status == 401 for ex in exchanges)
    assert exchanges[0].headers["www-authenticate"].startswith('Bearer realm="mcp"')
