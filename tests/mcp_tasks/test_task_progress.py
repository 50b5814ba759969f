"""A running task's progress reaches the client: worker (Celery) → Redis pub/sub → the tasks/result SSE stream.

The tool is a real ``http_request`` tool that downloads a slow response from a local
server, so the progress is the kind's own (bytes received), reported on a real worker.
"""
from __future__ import annotations

import json
import threading

import httpx
import pytest

from mcp_tools.models import ToolTask
from tests.helpers import wait_until
from tests.protocol_http.helpers import rpc
from tests.protocol_http.wire import assert_message_valid, messages_from_body

from .helpers import call

pytestmark = pytest.mark.worker
V = "2025-11-25"
RELATED = "io.modelcontextprotocol/related-task"
def _start(mcp_session, meta: dict | None = None) -> str:
    params = {"name": "fetch_report", "arguments": {}, "task": {}}
    if meta:
        params["_meta"] = meta
    return call(mcp_session, "tools/call", params, result_def="CreateTaskResult")["result"]["task"]["taskId"]


def _wait_streamed(mcp_session, task_id: str, accept: str | None = None) -> tuple[httpx.Response, list[dict]]:
    """tasks/result; every message on the stream is checked against the official 2025-11-25 schema."""
    message = rpc("tasks/result", {"taskId": task_id})
    response = mcp_session.post_raw(json.dumps(message), {"Accept": accept} if accept else None)
    messages = messages_from_body(response.headers.get("content-type", ""), response.content)
    for m in messages:
        assert_message_valid(V, m, "tasks/result" if m.get("id") == message["id"] else None)
    return response, messages


def _payload(reply: dict) -> dict:
    assert reply["result"].get("isError", False) is False, reply
    return json.loads(reply["result"]["content"][0]["text"])


def test_worker_progress_reaches_the_client_waiting_on_tasks_result(celery_worker, mcp_session, download):
    task_id = _start(mcp_session, {"progressToken": "report-1"})
    response, messages = _wait_streamed(mcp_session, task_id)

    assert response.headers["content-type"].startswith("text/event-stream")
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert len(progress) >= 2, messages
    assert all(p["progressToken"] == "report-1" for p in progress)  # the token of the original tools/call
    assert all(p["_meta"] == {RELATED: {"taskId": task_id}} for p in progress)
    values = [p["progress"] for p in progress]
    assert values == sorted(set(values)), values  # strictly increasing, as MCP requires
    assert all(p["total"] == len(download.document) for p in progress)
    assert progress[-1]["message"].startswith("Received ")

    statuses = [m["params"] for m in messages if m.get("method") == "notifications/tasks/status"]
    assert statuses and statuses[-1]["taskId"] == task_id and statuses[-1]["status"] == "completed"

    final = messages[-1]
    assert final["result"]["_meta"] == {RELATED: {"taskId": task_id}}
    assert _payload(final)["data"] == json.loads(download.document)
    assert messages.index(final) > max(messages.index(m) for m in messages if "method" in m)  # the answer is last


def test_without_a_progress_token_no_progress_is_sent_but_the_status_is(celery_worker, mcp_session, download):
    task_id = _start(mcp_session)
    response, messages = _wait_streamed(mcp_session, task_id)
    assert not [m for m in messages if m.get("method") == "notifications/progress"]
    assert [m for m in messages if m.get("method") == "notifications/tasks/status"]
    assert _payload(messages[-1])["status"] == 200


def test_a_client_that_reads_only_json_gets_the_plain_result(celery_worker, mcp_session, download):
    task_id = _start(mcp_session, {"progressToken": 7})
    response, messages = _wait_streamed(mcp_session, task_id, accept="application/json")
    assert response.headers["content-type"].startswith("application/json")
    assert len(messages) == 1 and _payload(messages[0])["status"] == 200
    assert ToolTask.objects.get(pk=task_id).progress_token == 7


def test_tasks_get_and_the_rest_status_show_the_last_progress_while_it_runs(celery_worker, mcp_session, download, owner,
                                                                           tasks_server):
    task_id = _start(mcp_session, {"progressToken": "p"})

    def reported():
        got = call(mcp_session, "tasks/get", {"taskId": task_id}, result_def="GetTaskResult")["result"]
        return got if got.get("statusMessage", "").startswith("Received ") else None

    got = wait_until(reported, timeout=15, interval=0.2)
    assert got["status"] == "working"

    def rest_progress():
        body = httpx.get(f"{tasks_server.url}/mcp/v1/tasks/{task_id}",
                         headers={"Authorization": f"Bearer {owner.secret}"}).json()
        return body if "progress" in body else None

    body = wait_until(rest_progress, timeout=15, interval=0.2)  # shown only while it runs
    assert body["status"] == "working"
    assert body["progress"]["total"] == len(download.document) and body["progress"]["progress"] > 0
    wait_until(lambda: ToolTask.objects.get(pk=task_id).is_terminal, timeout=20)
    row = ToolTask.objects.get(pk=task_id)
    assert row.status == "completed" and row.updated_at > row.created_at  # lastUpdatedAt moves


def test_when_every_wait_slot_is_taken_tasks_result_still_answers_in_json(celery_worker, download, owner,
                                                                          tasks_server):
    """MCP_STREAM_WORKERS=2 gives one wait slot: of two concurrent waits, one streams and one answers JSON."""
    from django.conf import settings
    from scripts.mcp_conformance import Server

    from .helpers import session

    server = Server(database_url=tasks_server.env["DATABASE_URL"], redis_url=settings.REDIS_URL, threads=8,
                    extra_env={"MCP_STREAM_WORKERS": "2"}).start()
    try:
        clients = [session(f"{server.url}/mcp", owner.secret) for _ in range(2)]
        task_ids = [_start(client, {"progressToken": f"t{i}"}) for i, client in enumerate(clients)]
        answers = {}

        def wait(i):
            answers[i] = _wait_streamed(clients[i], task_ids[i])

        threads = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        kinds = sorted(response.headers["content-type"].split(";")[0] for response, _ in answers.values())
        assert kinds == ["application/json", "text/event-stream"]
        for _, messages in answers.values():
            assert _payload(messages[-1])["status"] == 200  # both get the result
        for client in clients:
            client.close()
    finally:
        server.stop()


def test_a_session_get_stream_carries_the_progress_and_status_of_its_tasks(celery_worker, mcp_session, download,
                                                                          owner, tasks_server):
    """Without waiting on tasks/result, the session that started a task hears it on its GET stream;
    while a tasks/result wait streams the task, only that wait relays it (never twice)."""
    from tests.helpers import wait_until
    from tests.protocol_http.streams import SessionStream

    from .helpers import session

    url = f"{tasks_server.url}/mcp"
    stream = SessionStream(url, owner.secret, mcp_session.session_id)
    sibling = session(url, owner.secret)  # the same token's other session: not its tasks
    sibling_stream = SessionStream(url, owner.secret, sibling.session_id)
    wait_until(lambda: stream.raw and sibling_stream.raw, timeout=10)

    task_id = _start(mcp_session, {"progressToken": "on-get"})
    wait_until(lambda: any(m["params"].get("status") == "completed" for m in stream.messages), timeout=20)
    progress = [m["params"] for m in stream.messages if m["method"] == "notifications/progress"]
    assert len(progress) >= 2 and {p["progressToken"] for p in progress} == {"on-get"}
    assert all(p["_meta"] == {RELATED: {"taskId": task_id}} for p in progress)
    values = [p["progress"] for p in progress]
    assert values == sorted(set(values))
    statuses = [m["params"] for m in stream.messages if m["method"] == "notifications/tasks/status"]
    assert statuses[-1]["taskId"] == task_id
    for m in stream.messages:
        assert_message_valid(V, m, None)
    assert sibling_stream.messages == []

    heard_before = len(stream.messages)
    second = _start(mcp_session, {"progressToken": "on-result"})
    _, waited = _wait_streamed(mcp_session, second)
    assert len([m for m in waited if m.get("method") == "notifications/progress"]) >= 2
    assert not [m for m in stream.messages[heard_before:] if m["method"] == "notifications/progress"]

    for client in (mcp_session, sibling):
        client.http.delete(url, headers=client._headers())  # ends both streams
    stream.thread.join(timeout=5), sibling_stream.thread.join(timeout=5)
    sibling.close()
