"""Mistral's own MCP client (mistralai[agents]==3.7.0, MCPClientSSE) against a real server.

No Mistral API key is involved: this is the MCP side of their SDK, the part that
an agent run (`RunContext` + `client.beta.conversations.run_async`) uses to list
and call our tools.
"""
import asyncio
import json

from mcp import MCPError
from mistralai.client.models import FunctionTool
from mistralai.extra.exceptions import MCPAuthException
from mistralai.extra.mcp.sse import MCPClientSSE, SSEServerParams
from mistralai.extra.run.context import RunContext
import pytest

from mcp_tools.models import AuditEvent, Tool
from tickets.models import Ticket
from mcp_tools.services.lookup_cache import lookup_cache_bump

pytestmark = pytest.mark.django_db(transaction=True)


def mistral_client(server, secret=None, path="/mcp/sse"):
    headers = {"Authorization": f"Bearer {secret}"} if secret else None
    return MCPClientSSE(sse_params=SSEServerParams(url=server.url + path, headers=headers, timeout=10))


async def with_client(client, work):
    await client.initialize()
    try:
        return await work(client)
    finally:
        await client.aclose()


def test_get_tools_returns_the_enabled_tools_with_their_schemas(server_a, tools, all_tools_token):
    Tool.objects.filter(name="crm_lookup").update(enabled=False)
    lookup_cache_bump()  # QuerySet.update() sends no signal

    listed = asyncio.run(with_client(mistral_client(server_a, all_tools_token), lambda c: c.get_tools()))

    assert all(isinstance(tool, FunctionTool) for tool in listed)
    expected = Tool.objects.filter(enabled=True).order_by("name")
    assert [t.function.name for t in listed] == [t.name for t in expected]
    assert "crm_lookup" not in [t.function.name for t in listed]
    by_name = {t.function.name: t.function for t in listed}
    create_ticket = Tool.objects.get(name="create_ticket")
    assert by_name["create_ticket"].parameters == create_ticket.input_schema
    assert by_name["create_ticket"].description == create_ticket.description


def test_execute_tool_creates_a_ticket(server_a, tools, all_tools_token):
    arguments = {"title": "VPN down in Lyon", "description": "Since 9am", "priority": "urgent"}

    chunks = asyncio.run(with_client(mistral_client(server_a, all_tools_token),
                                     lambda c: c.execute_tool("create_ticket", arguments)))

    ticket = Ticket.objects.get(title="VPN down in Lyon")
    assert ticket.priority == "urgent"
    assert chunks[0]["type"] == "text"
    assert json.loads(chunks[0]["text"])["id"] == ticket.pk
    event = AuditEvent.objects.get(tool_name="create_ticket")
    assert (event.outcome, event.transport) == ("ok", "mcp-sse")


def test_a_tool_outside_the_token_scope_is_an_error(server_a, tools, echo_only_token):
    async def work(client):
        names = [t.function.name for t in await client.get_tools()]
        with pytest.raises(MCPError) as refused:
            await client.execute_tool("create_ticket", {"title": "x", "description": "y"})
        return names, refused.value

    names, error = asyncio.run(with_client(mistral_client(server_a, echo_only_token), work))

    assert names == ["echo"]
    assert "create_ticket" in str(error)
    assert not Ticket.objects.exists()


def test_invalid_arguments_come_back_as_an_error_result(server_a, tools, all_tools_token):
    async def work(client):
        # Mistral's execute_tool returns the text of an isError result; the raw session shows the flag.
        result = await client._session.call_tool(name="create_ticket", arguments={"title": "no description"})
        chunks = await client.execute_tool("create_ticket", {"title": "t", "description": "d", "priority": "asap"})
        return result, chunks

    result, chunks = asyncio.run(with_client(mistral_client(server_a, all_tools_token), work))

    assert result.is_error is True
    assert "description" in result.content[0].text
    assert "Invalid arguments" in chunks[0]["text"] and "priority" in chunks[0]["text"]
    assert not Ticket.objects.exists()
    assert set(AuditEvent.objects.values_list("outcome", flat=True)) == {"invalid"}


def test_no_token_is_refused(server_a, tools):
    with pytest.raises(MCPAuthException):
        asyncio.run(mistral_client(server_a).initialize())
    assert asyncio.run(mistral_client(server_a).requires_auth()) is True


def test_run_context_registers_the_server_tools(server_a, tools, all_tools_token):
    """What an agent run does before talking to Mistral: connect, list, and keep the tools callable."""
    async def work():
        async with RunContext(model="mistral-medium-latest") as run_ctx:
            await run_ctx.register_mcp_client(mcp_client=mistral_client(server_a, all_tools_token))
            return [t.function.name for t in run_ctx.get_tools()]

    assert "create_ticket" in asyncio.run(work())


def test_mistral_streamable_http_client_reaches_the_same_tools_at_mcp(server_a, tools, all_tools_token):
    """The README offers both: MCPClientSSE at /mcp/sse and MCPClientStreamableHTTP at /mcp."""
    from mistralai.extra.mcp.streamable_http import MCPClientStreamableHTTP, StreamableHTTPServerParams

    def client(url):
        return MCPClientStreamableHTTP(StreamableHTTPServerParams(
            url=url, headers={"Authorization": f"Bearer {all_tools_token}"}))

    over_http = asyncio.run(with_client(client(server_a.url + "/mcp"), lambda c: c.get_tools()))
    over_sse = asyncio.run(with_client(mistral_client(server_a, all_tools_token), lambda c: c.get_tools()))

    assert [t.model_dump() for t in over_http] == [t.model_dump() for t in over_sse]
