"""The io.modelcontextprotocol/tasks extension (2026-07-28) against a real gunicorn server and Celery worker."""
from __future__ import annotations

import json
import time

import pytest

from mcp_tools.models import ToolTask
from tests.protocol_http.helpers import McpHttp

from .helpers import WITH_TASKS, EXTENSION, stateless, working_task

pytestmark = pytest.mark.worker


@pytest.fixture
def mcp(tasks_server, owner):
    client = McpHttp(f"{tasks_server.url}/mcp", owner.secret)
    yield client
    client.close()


def _poll(client, task_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, reply = stateless(client, "tasks/get", {"taskId": task_id}, name=task_id, capabilities=WITH_TASKS)
        assert status == 200, reply
        if reply["result"]["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return reply["result"]
        time.sleep(0.2)


def test_discover_advertises_the_extension_and_no_v1_capability(mcp):
    status, reply = stateless(mcp, "server/discover", {})
    capabilities = reply["result"]["capabilities"]
    assert capabilities["extensions"][EXTENSION] == {}
    assert "tasks" not in capabilities


def test_an_async_tool_answers_a_task_and_tasks_get_inlines_the_original_result(celery_worker, mcp):
    status, reply = stateless(mcp, "tools/call", {"name": "slow_echo", "arguments": {"text": "hi"}},
                              name="slow_echo", capabilities=WITH_TASKS)
    created = reply["result"]
    assert status == 200 and created["resultType"] == "task"
    assert set(created) == {"resultType", "taskId", "status", "createdAt", "lastUpdatedAt", "ttlMs",
                            "pollIntervalMs"}
    assert isinstance(created["ttlMs"], int) and created["pollIntervalMs"] == 200
    done = _poll(mcp, created["taskId"])
    assert done["status"] == "completed" and done["resultType"] == "complete"
    assert json.loads(done["result"]["content"][0]["text"]) == {"echo": {"text": "hi"}}
    assert "_meta" not in done["result"] and "error" not in done
    _, direct = stateless(mcp, "tools/call", {"name": "quick_echo", "arguments": {"text": "hi"}},
                          name="quick_echo", capabilities=WITH_TASKS)
    assert {k: v for k, v in direct["result"].items() if k != "resultType"} == done["result"]


def test_a_tool_error_is_a_completed_task_with_is_error(celery_worker, mcp, tools):
    tools["slow_echo"].kind = "no_such_kind"
    tools["slow_echo"].save()
    _, reply = stateless(mcp, "tools/call", {"name": "slow_echo", "arguments": {}}, name="slow_echo",
                         capabilities=WITH_TASKS)
    done = _poll(mcp, reply["result"]["taskId"])
    assert done["status"] == "completed" and done["result"]["isError"] is True


def test_a_lost_worker_is_a_failed_task_with_an_inlined_error(mcp, owner, tools):
    task = working_task(tools["slow_echo"], owner.token)
    ToolTask.objects.filter(pk=task.pk).update(status="failed", outcome="internal_error", error_code="worker_lost",
                                               error_message="The worker running this task stopped.")
    done = _poll(mcp, task.pk)
    assert done["status"] == "failed" and "result" not in done
    assert done["error"]["code"] == -32603 and done["error"]["data"] == {"reason": "worker_lost"}


def test_without_the_extension_async_tools_and_task_methods_are_refused(mcp, owner, tools):
    status, reply = stateless(mcp, "tools/call", {"name": "slow_echo", "arguments": {}}, name="slow_echo")
    assert status == 400 and reply["error"]["code"] == -32021
    assert reply["error"]["data"] == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}
    task = working_task(tools["slow_echo"], owner.token)
    for method, params in (("tasks/get", {}), ("tasks/cancel", {}), ("tasks/update", {"inputResponses": {}})):
        status, reply = stateless(mcp, method, {"taskId": task.pk, **params}, name=task.pk)
        assert status == 400 and reply["error"]["code"] == -32021, method
    # A sync tool still answers in the request, extension or not.
    status, reply = stateless(mcp, "tools/call", {"name": "quick_echo", "arguments": {}}, name="quick_echo")
    assert status == 200 and reply["result"]["resultType"] == "complete"
    assert not ToolTask.objects.exclude(pk=task.pk).exists()


def test_cancel_and_update_answer_an_empty_ack_and_only_for_the_callers_tasks(tasks_server, mcp, owner, other,
                                                                              tools):
    task = working_task(tools["slow_echo"], owner.token)
    stranger = McpHttp(f"{tasks_server.url}/mcp", other.secret)
    for method, params in (("tasks/get", {}), ("tasks/cancel", {}), ("tasks/update", {"inputResponses": {}})):
        status, reply = stateless(stranger, method, {"taskId": task.pk, **params}, name=task.pk,
                                  capabilities=WITH_TASKS)
        assert status == 400 and reply["error"]["code"] == -32602, method
    stranger.close()
    status, reply = stateless(mcp, "tasks/update", {"taskId": task.pk, "inputResponses": {}}, name=task.pk,
                              capabilities=WITH_TASKS)
    assert reply["result"] == {"resultType": "complete"}
    for _ in range(2):  # idempotent: the same ack on a terminal task
        status, reply = stateless(mcp, "tasks/cancel", {"taskId": task.pk}, name=task.pk, capabilities=WITH_TASKS)
        assert status == 200 and reply["result"] == {"resultType": "complete"}
    assert _poll(mcp, task.pk)["status"] == "cancelled"
    status, reply = stateless(mcp, "tasks/get", {"taskId": "nope"}, name="nope", capabilities=WITH_TASKS)
    assert status == 400 and reply["error"]["code"] == -32602


def test_v1_only_methods_do_not_exist_in_the_stateless_era(mcp):
    for method in ("tasks/list", "tasks/result"):
        status, reply = stateless(mcp, method, {"taskId": "x"} if method == "tasks/result" else {},
                                  capabilities=WITH_TASKS)
        assert status == 404 and reply["error"]["code"] == -32601, method
