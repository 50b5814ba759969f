"""Change streams: admins' changes reach connected clients (2026-07-28 subscriptions/listen, handshake GET).

Judged by the official SDK client (``Client.listen``) and by raw HTTP with every message
checked against the official schema. Changes are made the way the admin makes them (model
saves in this process); they travel through Postgres commit → Redis → the server process.
"""
from __future__ import annotations

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from mcp_types import ResourceUpdatedNotification, ToolListChangedNotification
import pytest

from mcp_tools.models import Prompt, Resource, Tool
from tests.helpers import wait_until
from tests.protocol_http.helpers import STATELESS, McpHttp, rpc, stateless_meta
from tests.protocol_http.streams import RawListen, SessionStream
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
    assert tools_set_enabled(queryset=Tool.objects.filter(name="echo"), enabled=False) == 1
    stream.thread.join(timeout=15)
    assert stream.methods() == ["notifications/subscriptions/acknowledged", "notifications/tools/list_changed",
                                "<response>"]


def test_beyond_its_stream_limit_a_listen_is_refused_503_with_retry_after(server_factory, demo, demo_token):
    server = server_factory(MCP_LISTEN_MAX_STREAMS="0")
    response = httpx.post(f"{server.url}/mcp", json=rpc("subscriptions/listen", {
        "notifications": {"toolsListChanged": True}, "_meta": stateless_meta()}, id=41), headers={
        "Authorization": f"Bearer {demo_token}", "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": STATELESS, "Mcp-Method": "subscriptions/listen"})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    assert response.json()["id"] == 41 and "retry" in response.json()["error"]["message"]


def test_both_eras_promise_the_change_notifications(mcp_server, demo, demo_token):
    headers = {"Authorization": f"Bearer {demo_token}", "Accept": "application/json, text/event-stream"}
    discover = httpx.post(f"{mcp_server.url}/mcp", json=rpc("server/discover", {"_meta": stateless_meta()}),
                          headers={**headers, "MCP-Protocol-Version": STATELESS, "Mcp-Method": "server/discover"})
    init = httpx.post(f"{mcp_server.url}/mcp", headers=headers, json=rpc("initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
    for caps in (discover.json()["result"]["capabilities"], init.json()["result"]["capabilities"]):
        assert caps["tools"]["listChanged"] is True and caps["prompts"]["listChanged"] is True
        assert caps["resources"] == {"listChanged": True, "subscribe": True}


# --- the handshake era's GET stream -------------------------------------------------------------------

async def _sdk_session_stream(url: str, secret: str):
    heard = []

    async def on_message(message):
        heard.append(getattr(message, "root", message))

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy",
                            message_handler=on_message) as client:
        await client.subscribe_resource(POLICY)
        await anyio.sleep(1.0)  # the SDK opens its GET stream in the background after initialize
        await anyio.to_thread.run_sync(_disable_echo)
        await anyio.to_thread.run_sync(_edit_policy)
        with anyio.fail_after(15):
            while not ({ToolListChangedNotification, ResourceUpdatedNotification} <= {type(m) for m in heard}):
                await anyio.sleep(0.1)
    return heard


@pytest.mark.filterwarnings("ignore:resources/subscribe is removed")  # deprecated in 2026-07-28, current here
def test_the_sdk_client_in_a_handshake_session_hears_changes_on_its_get_stream(mcp_server, demo, demo_token):
    heard = anyio.run(_sdk_session_stream, f"{mcp_server.url}/mcp", demo_token)
    updated = [m for m in heard if isinstance(m, ResourceUpdatedNotification)]
    assert [m.params.uri for m in updated] == [POLICY]


def _handshake_session(url: str, secret: str) -> tuple[McpHttp, str]:
    client = McpHttp(url, secret)
    return client, client.initialize()


def test_a_session_get_stream_carries_its_subscriptions_and_ends_with_the_session(mcp_server, demo, demo_token):
    url = f"{mcp_server.url}/mcp"
    client, session_id = _handshake_session(url, demo_token)
    _, (reply,) = client.post(rpc("resources/subscribe", {"uri": POLICY}))
    assert reply["result"] == {}
    _, (refused,) = client.post(rpc("resources/subscribe", {"uri": "docs://not/there"}))
    assert refused["error"]["code"] == -32002  # only what this caller can read

    stream = SessionStream(url, demo_token, session_id)
    wait_until(lambda: stream.raw, timeout=10)  # "retry: ..." first: subscribed to the feed
    _edit_policy()
    prompt = Prompt.objects.get(name="triage_ticket")
    prompt.save()
    wait_until(lambda: len(stream.messages) >= 2, timeout=10)
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    assert stream.raw[0] == "retry: 5000"
    assert [m["method"] for m in stream.messages] == ["notifications/resources/updated",
                                                      "notifications/prompts/list_changed"]
    assert stream.messages[0]["params"] == {"uri": POLICY}
    for m in stream.messages:
        assert_message_valid("2025-11-25", m, None)

    ended = client.http.delete(url, headers=client._headers())
    assert ended.status_code == 204  # and the stream ends at once, not at its next keep-alive
    stream.thread.join(timeout=5)
    assert not stream.thread.is_alive()


def test_get_needs_a_live_session_of_the_same_caller_and_a_free_slot(server_factory, mcp_server, demo, demo_token,
                                                                     issue_token):
    url = f"{mcp_server.url}/mcp"
    client, session_id = _handshake_session(url, demo_token)
    sse = {"Accept": "text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    mine = {"Authorization": f"Bearer {demo_token}", **sse}
    assert httpx.get(url, headers=mine).status_code == 400  # no session id
    assert httpx.get(url, headers={**mine, "Mcp-Session-Id": "nope"}).status_code == 404
    someone_else = issue_token(name="other", all_tools=True).secret
    assert httpx.get(url, headers={"Authorization": f"Bearer {someone_else}", **sse,
                                   "Mcp-Session-Id": session_id}).status_code == 404
    stateless = httpx.get(url, headers={**mine, "MCP-Protocol-Version": STATELESS})
    assert stateless.status_code == 405 and stateless.headers["Allow"] == "POST"

    full = server_factory(MCP_LISTEN_MAX_STREAMS="0")
    other, other_session = _handshake_session(f"{full.url}/mcp", demo_token)
    busy = httpx.get(f"{full.url}/mcp", headers={**mine, "Mcp-Session-Id": other_session})
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
