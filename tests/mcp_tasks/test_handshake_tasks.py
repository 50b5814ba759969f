"""MCP tasks in the handshake era (2025-11-25) against a real gunicorn server and a real Celery worker."""
from __future__ import annotations

import json

import pytest

from mcp_tools.models import ToolTask

from .helpers import call, session, working_task

pytestmark = pytest.mark.worker
V = "2025-11-25"


def _all_tools(client) -> dict:
    tools, cursor = {}, None
    while True:
        reply = call(client, "tools/list", {"cursor": cursor} if cursor else {}, result_def="ListToolsResult")
        tools.update({t["name"]: t for t in reply["result"]["tools"]})
        cursor = reply["result"].get("nextCursor")
        if not cursor:
            return tools


def test_the_tasks_capability_is_announced_only_for_2025_11_25(tasks_server, owner):
    client = session(f"{tasks_server.url}/mcp", owner.secret)
    assert client.initialize_result["capabilities"]["tasks"] == {
        "list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    older = session(f"{tasks_server.url}/mcp", owner.secret, version="2025-06-18")
    assert "tasks" not in older.initialize_result["capabilities"]
    assert call(older, "tasks/list", {})["error"]["code"] == -32601
    client.close(), older.close()


def test_tools_list_tells_each_tools_task_support(mcp_session):
    tools = _all_tools(mcp_session)
    assert tools["slow_echo"]["execution"] == {"taskSupport": "required"}
    assert tools["quick_echo"]["execution"] == {"taskSupport": "optional"}


def test_a_task_augmented_call_runs_on_the_worker_and_tasks_result_is_the_original_result(celery_worker, mcp_session):
    created = call(mcp_session, "tools/call", {"name": "slow_echo", "arguments": {"text": "hi"}, "task": {"ttl": 60000}},
                   result_def="CreateTaskResult")["result"]
    task = created["task"]
    assert task["status"] == "working" and task["ttl"] == 60000 and task["pollInterval"] == 200
    row = ToolTask.objects.get(pk=task["taskId"])
    assert row.token is not None and row.tool_name == "slow_echo"
    got = call(mcp_session, "tasks/get", {"taskId": task["taskId"]}, result_def="GetTaskResult")["result"]
    assert got["taskId"] == task["taskId"] and got["status"] in ("working", "completed")

    result = call(mcp_session, "tasks/result", {"taskId": task["taskId"]}, result_def="CallToolResult")["result"]
    direct = call(mcp_session, "tools/call", {"name": "quick_echo", "arguments": {"text": "hi"}},
                  result_def="CallToolResult")["result"]
    assert result.pop("_meta") == {"io.modelcontextprotocol/related-task": {"taskId": task["taskId"]}}
    assert result == direct  # exactly what the same call answers synchronously
    done = call(mcp_session, "tasks/get", {"taskId": task["taskId"]}, result_def="GetTaskResult")["result"]
    assert done["status"] == "completed"


def test_a_sync_tool_may_run_as_a_task_and_an_async_one_only_as_a_task(celery_worker, mcp_session):
    created = call(mcp_session, "tools/call", {"name": "quick_echo", "arguments": {"n": 1}, "task": {}},
                   result_def="CreateTaskResult")["result"]["task"]
    result = call(mcp_session, "tasks/result", {"taskId": created["taskId"]}, result_def="CallToolResult")["result"]
    assert result.get("isError", False) is False and json.loads(result["content"][0]["text"]) == {"echo": {"n": 1}}
    refused = call(mcp_session, "tools/call", {"name": "slow_echo", "arguments": {}})
    assert refused["error"]["code"] == -32601 and "task" in refused["error"]["message"]
    assert not ToolTask.objects.filter(tool_name="slow_echo").exists()  # nothing queued for the refused call


def test_a_failing_task_returns_its_tool_error_from_tasks_result(celery_worker, mcp_session, tools):
    tools["slow_echo"].kind = "no_such_kind"
    tools["slow_echo"].save()
    task = call(mcp_session, "tools/call", {"name": "slow_echo", "arguments": {}, "task": {}},
                result_def="CreateTaskResult")["result"]["task"]
    result = call(mcp_session, "tasks/result", {"taskId": task["taskId"]}, result_def="CallToolResult")["result"]
    assert result["isError"] is True and "misconfigured" in result["content"][0]["text"]
    got = call(mcp_session, "tasks/get", {"taskId": task["taskId"]}, result_def="GetTaskResult")["result"]
    assert got["status"] == "failed" and "misconfigured" in got["statusMessage"]


def test_invalid_arguments_are_a_protocol_error_and_create_no_task(mcp_session, tools):
    tools["slow_echo"].input_schema = {"type": "object", "required": ["text"]}
    tools["slow_echo"].save()
    reply = call(mcp_session, "tools/call", {"name": "slow_echo", "arguments": {}, "task": {}})
    assert reply["error"]["code"] == -32602 and "text" in reply["error"]["message"]
    bad_ttl = call(mcp_session, "tools/call", {"name": "quick_echo", "arguments": {}, "task": {"ttl": "soon"}})
    assert bad_ttl["error"]["code"] == -32602
    assert not ToolTask.objects.exists()


def test_tasks_list_pages_through_only_the_callers_tasks(tasks_server, mcp_session, owner, other, tools):
    mine = {working_task(tools["quick_echo"], owner.token).pk for _ in range(3)}
    theirs = working_task(tools["quick_echo"], other.token).pk
    seen, cursor, pages = [], None, 0
    while True:
        result = call(mcp_session, "tasks/list", {"cursor": cursor} if cursor else {}, result_def="ListTasksResult")["result"]
        pages += 1
        seen += [t["taskId"] for t in result["tasks"]]
        cursor = result.get("nextCursor")
        if not cursor:
            break
    assert pages == 2 and sorted(seen) == sorted(mine)  # page size 2
    assert call(mcp_session, "tasks/list", {"cursor": "not-a-cursor"})["error"]["code"] == -32602

    stranger = session(f"{tasks_server.url}/mcp", other.secret)
    listed = call(stranger, "tasks/list", {}, result_def="ListTasksResult")["result"]
    assert [t["taskId"] for t in listed["tasks"]] == [theirs]
    some_of_mine = next(iter(mine))
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        reply = call(stranger, method, {"taskId": some_of_mine})
        assert reply["error"]["code"] == -32602, (method, reply)
    assert ToolTask.objects.get(pk=some_of_mine).status == "working"
    stranger.close()


def test_tasks_cancel_cancels_a_working_task_once(mcp_session, owner, tools):
    task = working_task(tools["slow_echo"], owner.token)
    cancelled = call(mcp_session, "tasks/cancel", {"taskId": task.pk}, result_def="CancelTaskResult")["result"]
    assert cancelled["status"] == "cancelled" and cancelled["taskId"] == task.pk
    again = call(mcp_session, "tasks/cancel", {"taskId": task.pk})
    assert again["error"]["code"] == -32602 and again["error"]["data"]["status"] == "cancelled"
    result = call(mcp_session, "tasks/result", {"taskId": task.pk}, result_def="CallToolResult")["result"]
    assert result["isError"] is True and "Cancelled" in result["content"][0]["text"]
    assert call(mcp_session, "tasks/get", {"taskId": "no-such-task"})["error"]["code"] == -32602


def test_older_revisions_keep_the_queued_answer(celery_worker, tasks_server, owner):
    client = session(f"{tasks_server.url}/mcp", owner.secret, version="2025-06-18")
    tools = call(client, "tools/list", {}, result_def="ListToolsResult")["result"]["tools"]
    assert all("execution" not in t for t in tools)
    result = call(client, "tools/call", {"name": "slow_echo", "arguments": {}, "task": {}},
                  result_def="CallToolResult")["result"]
    assert "Queued as task" in result["content"][0]["text"]
    client.close()
