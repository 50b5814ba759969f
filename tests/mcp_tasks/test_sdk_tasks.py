"""The official Python SDK client (mcp==2.3.0) runs a task-augmented tool call to completion.

mcp 2.3.0 has no built-in tasks client; its extension API is the documented way to follow
one: a ``ResultClaim`` for ``resultType: "task"`` whose resolver polls ``tasks/get`` (with
the ``Mcp-Name`` header, via ``Request.name_param``) until the task is finished.
"""
from __future__ import annotations

import threading
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client
from mcp.client.extension import ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Request, RequestParams, Result
import pytest

from mcp_tools.models import Tool, ToolTask
from mcp_tools.services.tools import tool_save
from tests.helpers import LocalHttpServer, json_reply
from tests.protocol_http.wire import RecordingTransport, assert_message_valid

pytestmark = pytest.mark.worker


class TaskCreated(Result):
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    ttl_ms: int
    poll_interval_ms: int | None = None


class TaskState(Result):
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class TaskIdParams(RequestParams):
    task_id: str


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class TasksExtension(ClientExtension):
    identifier = "io.modelcontextprotocol/tasks"

    def __init__(self, on_poll=None):
        self.seen: list[TaskState] = []
        self.on_poll = on_poll or (lambda state: None)

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self.resolve)]

    async def resolve(self, created: TaskCreated, ctx) -> CallToolResult:
        with anyio.fail_after(30):
            while True:
                state = await ctx.session.send_request(GetTask(params=TaskIdParams(task_id=created.task_id)),
                                                       TaskState)
                self.seen.append(state)
                self.on_poll(state)
                if state.status in ("completed", "failed", "cancelled"):
                    break
                await anyio.sleep((created.poll_interval_ms or 1000) / 1000)
        if state.result is None:
            raise RuntimeError(f"task {created.task_id} ended {state.status}: {state.error}")
        return CallToolResult.model_validate(state.result)


async def _run(url: str, secret: str, *, tool: str = "slow_echo", arguments=None, on_poll=None):
    recorder = RecordingTransport()
    extension = TasksExtension(on_poll)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, transport=recorder,
                              timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode="2026-07-28",
                            raise_exceptions=True, extensions=[extension]) as client:
        await client.list_tools()
        result = await client.call_tool(tool, {"text": "from the SDK"} if arguments is None else arguments)
    return result, extension.seen, recorder.exchanges


@pytest.fixture
def gated_tool(tools):
    """An async tool whose upstream answers only once the test opens the gate: the task cannot finish early."""
    gate = threading.Event()

    def upstream(method, path, headers, body):
        gate.wait(timeout=60)
        return json_reply(200, {"report": "ready"})

    with LocalHttpServer(upstream) as server:
        tool_save(tool=Tool(name="gated_report", description="A report that waits for the test", kind="http_request",
                            execution=Tool.Execution.ASYNC, input_schema={"type": "object"}, timeout_s=60,
                            config={"base_url": server.url, "path": "/report", "allowed_hosts": ["127.0.0.1"]}))
        yield gate
        gate.set()


def test_the_sdk_client_follows_a_task_to_its_result(celery_worker, tasks_server, owner, gated_tool):
    def open_gate_once_seen_working(state):
        if state.status == "working":
            gated_tool.set()

    result, seen, exchanges = anyio.run(lambda: _run(f"{tasks_server.url}/mcp", owner.secret, tool="gated_report",
                                                     arguments={}, on_poll=open_gate_once_seen_working))

    assert result.is_error is False
    assert '"ready"' in result.content[0].text, result.content[0].text
    # The client polled while the task was still running, and kept polling until it finished.
    assert seen[0].status == "working" and seen[-1].status == "completed", [s.status for s in seen]
    task = ToolTask.objects.get(pk=seen[-1].task_id)
    assert task.status == "completed" and task.token_id == owner.token.pk
    calls = [ex for ex in exchanges if isinstance(ex.request, dict) and ex.request.get("method") == "tools/call"]
    assert calls[0].messages[-1]["result"]["resultType"] == "task"
    assert calls[0].request["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]["extensions"] == {
        "io.modelcontextprotocol/tasks": {}}
    gets = [ex for ex in exchanges if isinstance(ex.request, dict) and ex.request.get("method") == "tasks/get"]
    assert gets and all(ex.status == 200 for ex in gets)
    checked = 0
    for ex in exchanges:  # every message valid against the official 2026-07-28 schema (task results: envelope)
        method = ex.request.get("method") if isinstance(ex.request, dict) else None
        for message in ex.messages:
            is_task = (message.get("result") or {}).get("resultType") == "task"
            assert_message_valid("2026-07-28", message, None if is_task else method)
            checked += 1
    assert checked >= 4
