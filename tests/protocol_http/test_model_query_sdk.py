"""An agent on the official SDK client (mcp==2.3.0) finds and calls the demo's model query tools over /mcp."""
from __future__ import annotations

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
import pytest

from demo_company.models import Customer, Order
from mcp_tools.models import AuditEvent

from .wire import RecordingTransport

MODES = ["legacy", "2026-07-28"]


async def _session(url: str, token: str, mode: str, email: str) -> dict:
    recorder = RecordingTransport()
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, transport=recorder,
                              timeout=httpx2.Timeout(30, read=60))
    client = Client(streamable_http_client(url, http_client=http), mode=mode, raise_exceptions=True)
    tools, cursor = {}, None
    async with http, client:
        while True:
            page = await client.list_tools(cursor=cursor)
            tools.update({tool.name: tool for tool in page.tools})
            cursor = page.next_cursor
            if not cursor:
                break
        found = await client.call_tool("find_customers", {"filter": {"email": {"iexact": email.upper()}}})
        california = await client.call_tool("customers_with_last_order", {"filter": {"state": {"exact": "CA"}},
                                                                          "page_size": 50})
        traversal = await client.call_tool("find_customers", {"filter": {"order__total_cents": {"gt": 0}}})
        unticked = await client.call_tool("customers_with_last_order", {"filter": {"state": {"exact": "CA"}},
                                                                        "order_by": ["email"]})
    return {"tools": tools, "found": found, "california": california, "traversal": traversal,
            "unticked": unticked}


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_lists_and_calls_the_model_query_tools(mode, mcp_server, demo, demo_token):
    email = Customer.objects.order_by("id").first().email
    outcome = anyio.run(_session, f"{mcp_server.url}/mcp", demo_token, mode, email)

    for name in ("find_customers", "customers_with_last_order"):
        tool = outcome["tools"][name]
        assert tool.annotations.read_only_hint is True
        assert tool.input_schema == demo[name].input_schema and tool.output_schema == demo[name].output_schema
    found = outcome["found"]
    assert found.is_error is False
    assert [row["email"] for row in found.structured_content["results"]] == [email]
    california = outcome["california"].structured_content["results"]
    assert {row["email"] for row in california} == set(Customer.objects.filter(state="CA")
                                                       .values_list("email", flat=True))
    for row in california:
        latest = Order.objects.filter(customer__email=row["email"]).order_by("-created_at", "-id").first()
        assert (row["last_order"] or {}).get("id") == (latest.id if latest else None)
    for refused in (outcome["traversal"], outcome["unticked"]):
        assert refused.is_error is True
        assert "Invalid arguments" in refused.content[0].text
    assert "is not one of ['created_at', 'email', 'plan', 'state']" in outcome["traversal"].content[0].text
    assert "'email' is not one of" in outcome["unticked"].content[0].text
    assert AuditEvent.objects.filter(outcome="invalid", tool_name__in=["find_customers",
                                                                       "customers_with_last_order"]).count() == 2
