"""A worker whose database connection is terminated while a tool runs still records the true outcome, at once.

A real Celery worker (its own broker: a private redis-server) runs an async ``http_request`` tool
against a local upstream that holds the request; meanwhile the test terminates the worker's
Postgres backends with ``pg_terminate_backend`` (found by their application_name), then lets the
upstream answer. The result (or the tool's own error) must be stored within seconds, not turned
into "worker lost" when the lease runs out.
"""
import threading

from django.db import connection
import pytest

from mcp_tools.models import AuditEvent, Tool, ToolTask
from mcp_tools.services import tasks as task_services
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save
from tests.helpers import LocalHttpServer, json_reply, wait_until
from tests.notifications.support import WorkerProcess, worker_database_url

pytestmark = pytest.mark.worker

APPLICATION_NAME = "task-worker-under-test"


@pytest.fixture
def broker(private_redis):
    """A private redis-server as the Celery broker (tests/conftest.py: private_redis)."""
    return private_redis


@pytest.fixture
def worker(transactional_db, broker, monkeypatch):
    from mcp_project.celery import app
    from mcp_tools.tasks import run_tool_task

    process = WorkerProcess(broker_url=broker.url, settings_module="tests.settings",
                            database_url=f"{worker_database_url()}?application_name={APPLICATION_NAME}")
    # Tasks of this test go to this worker's broker only (another test's worker may share the suite's Redis).
    monkeypatch.setattr(task_services, "_enqueue", lambda *, task_id, countdown=None: run_tool_task.apply_async(
        (task_id,), connection=app.connection_for_write(broker.url)))
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def _terminate_worker_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE application_name = %s AND datname = current_database()", [APPLICATION_NAME])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("upstream, status, outcome", [
    ("ok", "completed", "ok"),
    ("redirect", "failed", "tool_error"),  # the tool's own failure takes the failure path
])
def test_a_terminated_connection_does_not_lose_the_tasks_outcome(worker, upstream, status, outcome):
    release = threading.Event()
    entered = threading.Event()

    def answer(method, path, headers, body):
        entered.set()
        release.wait(timeout=60)
        if upstream == "redirect":
            return 302, {"Location": "http://127.0.0.1:9/elsewhere"}, b""
        return json_reply(200, {"report": "nightly", "rows": 3})

    with LocalHttpServer(answer) as server:
        tool_save(tool=Tool(name="fetch_report", description="Download the report", kind="http_request",
                            execution=Tool.Execution.ASYNC, input_schema={"type": "object"}, timeout_s=60,
                            config={"base_url": server.url, "path": "/report", "allowed_hosts": ["127.0.0.1"]}))
        caller = Caller(token=token_issue(name="owner", all_tools=True).token)
        queued = tool_invoke(name="fetch_report", arguments={}, caller=caller)
        assert queued.outcome == "queued", queued.message
        assert entered.wait(timeout=60), "the worker never called the upstream"
        assert _terminate_worker_backends() >= 1  # the worker's connection dies while the tool runs
        release.set()
        # Well under the task lease (tool timeout + grace), after which it would be reported as "worker lost".
        wait_until(lambda: ToolTask.objects.get(pk=queued.task_id).status != "working", timeout=30)

    task = ToolTask.objects.get(pk=queued.task_id)
    assert (task.status, task.outcome) == (status, outcome), (task.error_code, task.error_message)
    assert task.error_code != "worker_lost"
    if status == "completed":
        assert "nightly" in str(task.result)
    outcomes = list(AuditEvent.objects.filter(task_id=task.pk).order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["queued", outcome]  # once each: nothing lost, nothing recorded twice
