"""The official MCP SDK's HTTP+SSE client (mcp==2.3.0, ``mcp.client.sse.sse_client``) against real servers."""
import asyncio
import time

import httpx2
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client
import mcp_types as types
import pytest

from mcp_tools.models import AuditEvent, Tool
from tickets.models import Ticket
from mcp_tools.services.lookup_cache import lookup_cache_bump

pytestmark = pytest.mark.django_db(transaction=True)

TICKET = {"title": "Laptop will not boot", "description": "Blue screen after update", "priority": "medium"}


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


async def session_run(url, headers, work, *, httpx_client_factory=None, **session_options):
    options = {"httpx_client_factory": httpx_client_factory} if httpx_client_factory else {}
    async with sse_client(url, headers=headers, timeout=10, sse_read_timeout=60, **options) as (read, write):
        async with ClientSession(read, write, **session_options) as session:
            initialized = await session.initialize()
            return initialized, await work(session)


def test_the_sdk_lists_and_calls_tools(server_a, tools, all_tools_token):
    async def work(session):
        listed = await session.list_tools()
        called = await session.call_tool("create_ticket", TICKET)
        return listed, called

    initialized, (listed, called) = asyncio.run(session_run(server_a.url + "/mcp/sse", bearer(all_tools_token), work))

    assert initialized.protocol_version == "2025-11-25"
    assert initialized.server_info.name
    enabled = list(Tool.objects.filter(enabled=True).order_by("name").values_list("name", "input_schema"))
    assert [(t.name, t.input_schema) for t in listed.tools] == enabled
    assert called.is_error is not True
    ticket = Ticket.objects.get(title=TICKET["title"])
    assert called.structured_content["id"] == ticket.pk
    assert AuditEvent.objects.get(tool_name="create_ticket").transport == "mcp-sse"


def test_refusals_come_back_as_errors(server_a, tools, echo_only_token):
    async def work(session):
        with pytest.raises(MCPError) as outside_scope:
            await session.call_tool("create_ticket", TICKET)
        invalid = await session.call_tool("echo", {"text": 42})
        return outside_scope.value, invalid

    _, (outside_scope, invalid) = asyncio.run(session_run(server_a.url + "/mcp/sse", bearer(echo_only_token), work))

    assert "create_ticket" in str(outside_scope)
    assert invalid.is_error is True and "text" in invalid.content[0].text
    assert not Ticket.objects.exists()


def test_no_token_is_refused(server_a, tools):
    async def work(session):
        return None

    with pytest.raises(httpx2.HTTPStatusError) as refused:
        asyncio.run(session_run(server_a.url + "/mcp/sse", None, work))
    assert refused.value.response.status_code == 401


class _PostsElsewhere(httpx2.AsyncBaseTransport):
    """Sends every POST to another server process; the GET stream stays where it was opened."""

    def __init__(self, port):
        self.port = port
        self.inner = httpx2.AsyncHTTPTransport()
        self.posted_to = []

    async def handle_async_request(self, request):
        if request.method == "POST":
            request.url = request.url.copy_with(port=self.port)
            self.posted_to.append(request.url.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


def test_the_sdk_works_with_the_stream_and_the_posts_on_different_processes(server_a, server_b, tools,
                                                                            all_tools_token):
    port_b = int(server_b.url.rsplit(":", 1)[1])
    transport = _PostsElsewhere(port_b)

    def factory(headers=None, timeout=None, auth=None):
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=transport)

    async def work(session):
        return await session.call_tool("create_ticket", TICKET)

    _, called = asyncio.run(session_run(server_a.url + "/mcp/sse", bearer(all_tools_token), work,
                                        httpx_client_factory=factory))

    assert transport.posted_to and set(transport.posted_to) == {port_b}
    assert called.structured_content["id"] == Ticket.objects.get(title=TICKET["title"]).pk


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_a_tool_that_needs_confirmation_asks_the_user_over_the_stream(server_a, server_b, tools, all_tools_token,
                                                                      action):
    """The call runs off its POST's thread, so the SDK can POST the user's answer (to another process here)."""
    Tool.objects.filter(name="create_ticket").update(requires_confirmation=True)
    lookup_cache_bump()  # QuerySet.update() sends no signal
    transport = _PostsElsewhere(int(server_b.url.rsplit(":", 1)[1]))
    asked = []

    def factory(headers=None, timeout=None, auth=None):
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, transport=transport)

    async def confirm(context, params):
        asked.append(params.message)
        if action == "accept":
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")

    async def work(session):
        return await session.call_tool("create_ticket", TICKET)

    started = time.monotonic()
    _, called = asyncio.run(session_run(server_a.url + "/mcp/sse", bearer(all_tools_token), work,
                                        httpx_client_factory=factory, elicitation_callback=confirm))

    assert time.monotonic() - started < 20
    assert len(asked) == 1 and "Create" in asked[0] and TICKET["title"] in asked[0]
    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert event.confirmation == action and event.transport == "mcp-sse"
    if action == "accept":
        assert called.is_error is not True
        assert called.structured_content["id"] == Ticket.objects.get(title=TICKET["title"]).pk
    else:
        assert called.is_error is True and "did not confirm" in called.content[0].text
        assert event.outcome == "denied" and not Ticket.objects.exists()


def test_a_tool_that_needs_confirmation_is_refused_when_the_client_cannot_ask(server_a, tools, all_tools_token):
    Tool.objects.filter(name="create_ticket").update(requires_confirmation=True)
    lookup_cache_bump()

    async def work(session):
        return await session.call_tool("create_ticket", TICKET)

    _, called = asyncio.run(session_run(server_a.url + "/mcp/sse", bearer(all_tools_token), work))

    assert called.is_error is True and "did not confirm" in called.content[0].text
    assert AuditEvent.objects.get(tool_name="create_ticket").confirmation == "unsupported"
    assert not Ticket.objects.exists()
