"""Cancelling stops a running tool at its next progress report, on a worker (tasks/cancel) and in a request.

The tool downloads a slow document (about 12 s) from a local server; a stopped tool hangs
up early, which the server sees, and its audit event says "cancelled".
"""
from __future__ import annotations

import json
import threading
import time

import pytest

from mcp_tools.models import AuditEvent, Tool, ToolTask
from mcp_tools.services.tools import tool_save
from tests.helpers import wait_until
from tests.protocol_http.helpers import rpc

from .helpers import SlowDownload, call

pytestmark = pytest.mark.worker
FULL_RUN_S = 40 * 0.3


@pytest.fixture
def big_download(tools):
    server = SlowDownload(chunks=40, pause=0.3)
    config = {"base_url": server.url, "path": "/big", "allowed_hosts": ["127.0.0.1"]}
    tool_save(tool=Tool(name="fetch_big", description="Download the archive (slow)", kind="http_request",
                        execution=Tool.Execution.ASYNC, input_schema={"type": "object"}, timeout_s=60,
                        config=config))
    tool_save(tool=Tool(name="fetch_big_now", description="Download the archive in the request",
                        kind="http_request", input_schema={"type": "object"}, timeout_s=60, config=config))
    yield server
    server.close()


def _cancelled_event(**filters):
    return AuditEvent.objects.filter(error_code="cancelled", **filters).first()


def test_tasks_cancel_stops_the_running_tool(celery_worker, mcp_session, big_download):
    task_id = call(mcp_session, "tools/call", {"name": "fetch_big", "arguments": {}, "task": {}},
                   result_def="CreateTaskResult")["result"]["task"]["taskId"]
    wait_until(lambda: ToolTask.objects.get(pk=task_id).status_message.startswith("Received"), timeout=15)

    cancelled = call(mcp_session, "tasks/cancel", {"taskId": task_id}, result_def="CancelTaskResult")["result"]
    assert cancelled["status"] == "cancelled"
    event = wait_until(lambda: _cancelled_event(task_id=task_id), timeout=10)
    assert event.duration_ms < FULL_RUN_S * 1000  # stopped mid-download, not run to the end
    wait_until(lambda: big_download.outcome is not None, timeout=10)
    assert big_download.outcome == "aborted"
    assert ToolTask.objects.get(pk=task_id).status == "cancelled"  # and it stays cancelled


@pytest.mark.parametrize("meta", [{"progressToken": "big"}, {}], ids=["streamed", "answered-inline"])
def test_notifications_cancelled_stops_a_tool_running_in_the_request(mcp_session, big_download, meta):
    message = rpc("tools/call", {"name": "fetch_big_now", "arguments": {}, "_meta": meta})
    replies = {}

    def run_call():
        replies["response"] = mcp_session.post_raw(json.dumps(message))

    caller = threading.Thread(target=run_call)
    caller.start()
    wait_until(lambda: big_download.requests_started > 0, timeout=10)
    time.sleep(0.5)  # downloading and reporting progress
    response = mcp_session.post_raw(json.dumps(rpc("notifications/cancelled", {"requestId": message["id"],
                                                                       "reason": "user pressed stop"}, id=None)))
    assert response.status_code == 202
    caller.join(timeout=30)
    assert not caller.is_alive()
    kind = "application/json" if not meta else "text/event-stream"  # without a token: answered inline
    assert replies["response"].headers.get("content-type", "").startswith(kind), replies["response"].headers
    event = wait_until(lambda: _cancelled_event(tool_name="fetch_big_now"), timeout=10)
    assert event.outcome == "tool_error" and event.duration_ms < FULL_RUN_S * 1000
    wait_until(lambda: big_download.outcome is not None, timeout=10)
    assert big_download.outcome == "aborted"

