"""subscriptions/listen (2026-07-28): admins' changes reach listening clients, over a real gunicorn server.

Judged by the official SDK client (``Client.listen``) and by raw HTTP with every message
checked against the official schema. Changes are made the way the admin makes them (model
saves in this process); they travel through Postgres commit → Redis → the server process.
"""
from __future__ import annotations

import json
import threading

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
import pytest

from mcp_tools.models import Prompt, Resource, Tool
from tests.helpers import wait_until
from tests.protocol_http.helpers import STATELESS, rpc, stateless_meta
from tests.protocol_http.wire import assert_message_valid

POLICY = "docs://support/escalation-policy"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


def _edit_policy():
    resource = Resource.objects.get(uri=POLICY)
    resource.text += "\n- weekends: page the on-call engineer for urgent tickets only\n"
    resource.save()


def _disable_echo():
    tool = Tool.objects.get(name="echo")
    tool.enabled = False
    tool.save()


async def _sdk_listen(url: str, secret: str):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=httpx2.Timeout(30, read=60))
    events = []
    async with http, Client(streamable_http_client(url, http_client=http), mode="2026-07-28") as client:
        async with client.listen(tools_list_changed=True, resource_subscriptions=[POLICY]) as subscription:
            honored = subscription.honored
            await anyio.to_thread.run_sync(_disable_echo)
            await anyio.to_thread.run_sync(_edit_policy)
            with anyio.fail_after(15):
                async for event in subscription:
                    events.append(event)
                    if len(events) == 2:
                        break
        listed = await client.list_tools()
    return honored, events, [t.name for t in listed.tools]


def test_the_sdk_client_hears_an_admins_changes(mcp_server, demo, demo_token):
    honored, events, names = anyio.run(_sdk_listen, f"{mcp_server.url}/mcp", demo_token)

    assert honored.tools_list_changed is True and honored.resource_subscriptions == [POLICY]
    assert ToolsListChanged() in events and ResourceUpdated(uri=POLICY) in events
    assert "echo" not in names  # refetching after the event shows the change


class RawListen:
    """A raw subscriptions/listen stream read line by line on a thread (so the test can act meanwhile)."""

    def __init__(self, url: str, secret: str, notifications: dict):
        self.message = rpc("subscriptions/listen", {"notifications": notifications, "_meta": stateless_meta()})
        self.messages: list[dict] = []
        self.status = None
        self.content_type = ""
        headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream",
                   "Content-Type": "application/json", "MCP-Protocol-Version": STATELESS,
                   "Mcp-Method": "subscriptions/listen"}
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()

    def _read(self, url, headers):
        with httpx.stream("POST", url, headers=headers, content=json.dumps(self.message), timeout=60) as response:
            self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    self.messages.append(json.loads(line[6:]))

    def methods(self) -> list[str]:
        return [m.get("method", "<response>") for m in self.messages]


def test_a_listen_stream_carries_only_what_was_asked_for_and_ends_with_its_response(server_factory, demo,
                                                                                    demo_token):
    server = server_factory(MCP_LISTEN_MAX_S="4")
    stream = RawListen(f"{server.url}/mcp", demo_token, {"promptsListChanged": True,
                                                         "resourceSubscriptions": ["docs://nothing/else"]})
    wait_until(lambda: stream.messages, timeout=10)  # acknowledged: subscribed to the feed
    _disable_echo()  # tools: not asked for
    _edit_policy()  # another resource than the one subscribed
    prompt = Prompt.objects.get(name="triage_ticket")
    prompt.description = "Turn a customer's message into a well-formed ticket."
    prompt.save()
    stream.thread.join(timeout=20)

    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    assert stream.methods() == ["notifications/subscriptions/acknowledged", "notifications/prompts/list_changed",
                                "<response>"]
    ack, changed, final = stream.messages
    assert ack["params"]["notifications"] == {"promptsListChanged": True,
                                              "resourceSubscriptions": ["docs://nothing/else"]}
    request_id = stream.message["id"]
    assert changed["params"]["_meta"][SUBSCRIPTION_ID] == request_id
    assert final["id"] == request_id and final["result"]["resultType"] == "complete"
    for m in stream.messages:
        assert_message_valid(STATELESS, m, "subscriptions/listen" if "id" in m else None)


def test_the_admins_bulk_disable_is_announced_too(server_factory, demo, demo_token):
    from mcp_tools.services.tools import tools_set_enabled

    server = server_factory(MCP_LISTEN_MAX_S="3")
    stream = RawListen(f"{server.url}/mcp", demo_token, {"toolsListChanged": True})
    wait_until(lambda: stream.messages, timeout=10)
    assert tools_set_enabled(queryset=Tool.objects.filter(name="echo"), enabled=False) == 1  # QuerySet.update()
    stream.thread.join(timeout=15)
    assert stream.methods() == ["notifications/subscriptions/acknowledged", "notifications/tools/list_changed",
                                "<response>"]


def test_beyond_its_stream_limit_a_listen_is_acknowledged_and_closed_at_once(server_factory, demo, demo_token):
    server = server_factory(MCP_LISTEN_MAX_STREAMS="0")
    stream = RawListen(f"{server.url}/mcp", demo_token, {"toolsListChanged": True})
    stream.thread.join(timeout=10)
    assert not stream.thread.is_alive()
    assert stream.methods() == ["notifications/subscriptions/acknowledged", "<response>"]


def test_change_notifications_are_promised_only_where_they_can_be_delivered(mcp_server, demo, demo_token):
    headers = {"Authorization": f"Bearer {demo_token}", "Accept": "application/json, text/event-stream"}
    discover = httpx.post(f"{mcp_server.url}/mcp", json=rpc("server/discover", {"_meta": stateless_meta()}),
                          headers={**headers, "MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover"})
    caps = discover.json()["result"]["capabilities"]
    assert caps["tools"]["listChanged"] is True and caps["prompts"]["listChanged"] is True
    assert caps["resources"] == {"listChanged": True, "subscribe": True}
    init = httpx.post(f"{mcp_server.url}/mcp", headers=headers, json=rpc("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
    handshake = init.json()["result"]["capabilities"]  # no GET stream in this era: nothing promised
    assert "listChanged" not in handshake["tools"] and "subscribe" not in handshake["resources"]
