"""The README's Mistral agent example, end to end: only Mistral's cloud API is replaced.

A local fake of the Conversations API (127.0.0.1) plays the model: it answers the
first turn with a call of ``create_ticket`` and the second with a message. The
Mistral SDK (``client.beta.conversations.run_async`` with a ``RunContext``) calls
the tool on our real server through ``MCPClientSSE``, exactly as in the README.
"""
import asyncio
import json

from mistralai.client import Mistral
from mistralai.extra.mcp.sse import MCPClientSSE, SSEServerParams
from mistralai.extra.run.context import RunContext
import pytest

from tickets.models import Ticket

from ..helpers import LocalHttpServer, json_reply

pytestmark = pytest.mark.django_db(transaction=True)

USAGE = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
CALL_ARGUMENTS = {"title": "Order #1042 arrived damaged", "description": "Box crushed, screen cracked",
                  "priority": "high"}


def fake_conversations_api(method, path, headers, body):
    if method == "POST" and path == "/v1/conversations":
        return json_reply(200, {"object": "conversation.response", "conversation_id": "conv_1", "usage": USAGE,
                                "outputs": [{"object": "entry", "type": "function.call", "tool_call_id": "call_1",
                                             "id": "fc_1", "name": "create_ticket",
                                             "arguments": json.dumps(CALL_ARGUMENTS)}]})
    if method == "POST" and path == "/v1/conversations/conv_1":
        return json_reply(200, {"object": "conversation.response", "conversation_id": "conv_1", "usage": USAGE,
                                "outputs": [{"object": "entry", "type": "message.output", "role": "assistant",
                                             "id": "msg_1", "content": "I opened a high-priority ticket."}]})
    return json_reply(404, {"detail": f"unexpected {method} {path}"})


def test_an_agent_run_calls_our_tool_through_mcp_client_sse(server_a, tools, all_tools_token):
    async def run(mistral_url):
        client = Mistral(api_key="not-needed-for-the-fake", server_url=mistral_url)
        async with RunContext(model="mistral-medium-latest") as run_ctx:
            mcp_client = MCPClientSSE(sse_params=SSEServerParams(
                url=f"{server_a.url}/mcp/sse", headers={"Authorization": f"Bearer {all_tools_token}"}))
            await run_ctx.register_mcp_client(mcp_client=mcp_client)
            result = await client.beta.conversations.run_async(
                run_ctx=run_ctx, inputs="A customer's order #1042 arrived damaged. Open a ticket.")
            return result.output_as_text

    with LocalHttpServer(fake_conversations_api) as mistral:
        answer = asyncio.run(run(mistral.url))

    assert answer == "I opened a high-priority ticket."
    ticket = Ticket.objects.get(title=CALL_ARGUMENTS["title"])
    assert ticket.priority == "high"
    first, second = (json.loads(r["body"]) for r in mistral.requests)
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert offered["create_ticket"]["parameters"] == tools["create_ticket"].input_schema
    function_result = second["inputs"][0]
    assert function_result["type"] == "function.result" and function_result["tool_call_id"] == "call_1"
    assert json.loads(json.loads(function_result["result"])[0]["text"])["id"] == ticket.pk
