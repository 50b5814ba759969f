"""Live task events over the real Redis: what a worker announces, and how a waiter hears it."""
from datetime import timedelta
import threading
import time

from django.utils import timezone
import pytest

from mcp_tools.models import Tool, ToolTask
from mcp_tools.services import tasks as task_services
from mcp_tools.services.invocation import Caller
from mcp_tools.services.live_events import task_event_publish, task_events_listen
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save


@pytest.fixture
def owned_task(transactional_db):
    tool = tool_save(tool=Tool(name="slow_echo", description="x", kind="echo", execution=Tool.Execution.ASYNC,
                               input_schema={"type": "object"}))
    issued = token_issue(name="owner", all_tools=True)
    now = timezone.now()
    task = ToolTask.objects.create(tool=tool, tool_name=tool.name, token=issued.token, arguments={}, ttl_s=600,
                                   created_at=now, expires_at=now + timedelta(seconds=600), progress_token="t-1")
    return task, Caller(token=issued.token, transport="test")


def _drain(listener, wait=1.0):
    events, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        event = listener.next(timeout=0.1)
        if event is not None:
            events.append(event)
    return events


@pytest.mark.parametrize("token,valid", [("abc", True), (7, True), (0, True), ("", False), (True, False),
                                         (1.5, False), (None, False), ({"x": 1}, False), ("x" * 257, False)])
def test_only_string_or_integer_progress_tokens_are_kept(token, valid):
    assert task_services.progress_token_valid(token) is valid


def test_the_reporter_announces_only_forward_progress_and_stores_it(owned_task, monkeypatch):
    task, _ = owned_task
    monkeypatch.setattr(task_services, "PROGRESS_PUBLISH_EVERY_S", 0)
    monkeypatch.setattr(task_services, "PROGRESS_STORE_EVERY_S", 0)
    report = task_services._progress_reporter(task)
    with task_events_listen(task_id=task.pk) as listener:
        report(1, 10, "first")
        report(1, 10, "same again")  # not forward: dropped
        report(0.5, 10)  # backwards: dropped
        report(True)  # not a number: dropped
        report(4, 10, "fourth")
        events = _drain(listener)
    assert [(e["progress"], e["message"]) for e in events] == [(1, "first"), (4, "fourth")]
    assert all(e == {**e, "type": "progress", "total": 10} for e in events)
    task.refresh_from_db()
    assert task.progress == {"progress": 4, "total": 10, "message": "fourth"}
    assert task.status_message == "fourth" and task.updated_at > task.created_at


def test_the_reporter_throttles_announcements(owned_task):
    task, _ = owned_task
    report = task_services._progress_reporter(task)
    with task_events_listen(task_id=task.pk) as listener:
        for step in range(1, 51):  # 50 reports in a burst
            report(step, 50)
        events = _drain(listener, wait=0.5)
    assert 1 <= len(events) <= 3, events


def test_a_waiter_hears_progress_and_wakes_at_once_when_the_task_finishes(owned_task):
    task, caller = owned_task
    heard, statuses = [], []

    def worker():
        time.sleep(0.3)
        task_event_publish(task_id=task.pk, event={"type": "progress", "progress": 1, "total": 2, "message": None})
        time.sleep(0.2)
        ToolTask.objects.filter(pk=task.pk).update(status=ToolTask.Status.COMPLETED, result={"ok": True})
        task_event_publish(task_id=task.pk, event={"type": "status", "status": "completed"})

    thread = threading.Thread(target=worker)
    started = time.monotonic()
    thread.start()
    done = task_services.task_result(task_id=task.pk, caller=caller, timeout_s=30, on_progress=heard.append,
                                     on_status=statuses.append)
    thread.join()
    assert done.status == "completed" and done.result == {"ok": True}
    assert heard == [{"type": "progress", "progress": 1, "total": 2, "message": None}]
    assert [s.status for s in statuses] == ["completed"]
    assert time.monotonic() - started < 10


def test_a_waiter_finds_the_end_from_the_row_when_no_event_comes(owned_task):
    task, caller = owned_task
    threading.Timer(0.3, lambda: ToolTask.objects.filter(pk=task.pk).update(
        status=ToolTask.Status.FAILED, error_code="x", error_message="boom")).start()
    done = task_services.task_result(task_id=task.pk, caller=caller, timeout_s=30)
    assert done.status == "failed" and done.error_message == "boom"


def test_a_waiter_stops_when_its_client_is_gone(owned_task):
    task, caller = owned_task
    stop_at = time.monotonic() + 0.5
    done = task_services.task_result(task_id=task.pk, caller=caller, timeout_s=60,
                                     stop=lambda: time.monotonic() > stop_at)
    assert done.status == "working"


def test_cancelling_announces_the_new_status(owned_task):
    task, caller = owned_task
    with task_events_listen(task_id=task.pk) as listener:
        task_services.task_cancel(task_id=task.pk, caller=caller)
        events = _drain(listener, wait=0.5)
    assert events == [{"type": "status", "status": "cancelled"}]
