"""The official SDK client (mcp==2.3.0, handshake era 2025-11-25) hears a worker task's progress.

mcp 2.3.0 has typed ``tasks/result`` requests but no way to send a task-augmented
``tools/call`` in legacy mode (it validates every tools/call answer as a CallToolResult).
So the task is started over raw HTTP with the same token (tasks belong to the token, not
to a session), and the SDK client waits on ``tasks/result`` through its own session and
message handler: the SDK parses every notification we relay.
"""
from __future__ import annotations

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CallToolResult,
    GetTaskPayloadRequest,
    GetTaskPayloadRequestParams,
    ProgressNotification,
)
import pytest

from .helpers import call

pytestmark = pytest.mark.worker


async def _follow(url: str, secret: str, task_id: str):
    heard = []

    async def on_message(message):
        heard.append(getattr(message, "root", message))

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=httpx2.Timeout(30, read=60))
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy", raise_exceptions=True,
                            message_handler=on_message) as client:
        result = await client.session.send_request(
            GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id)), CallToolResult)
        await anyio.sleep(0.2)  # notifications are handled on their own tasks
    return result, heard


def test_the_sdk_client_hears_progress_and_status_of_a_worker_task(celery_worker, tasks_server, owner, download,
                                                                   mcp_session):
    task_id = call(mcp_session, "tools/call", {"name": "fetch_report", "arguments": {}, "task": {"ttl": 60_000},
                                       "_meta": {"progressToken": "sdk-report"}},
                   result_def="CreateTaskResult")["result"]["task"]["taskId"]
    result, heard = anyio.run(_follow, f"{tasks_server.url}/mcp", owner.secret, task_id)

    assert result.is_error is False
    assert '"status": 200' in result.content[0].text
    progress = [m for m in heard if isinstance(m, ProgressNotification)]
    assert len(progress) >= 2, heard
    assert {p.params.progress_token for p in progress} == {"sdk-report"}
    assert [p.params.progress for p in progress] == sorted({p.params.progress for p in progress})
    assert progress[-1].params.total == len(download.document)
    # mcp 2.3.0 does not surface notifications/tasks/status (optional in the spec; the raw-HTTP
    # test checks them against the schema). They must not upset it: no parse errors reach the handler.
    assert not [m for m in heard if isinstance(m, Exception)], heard
