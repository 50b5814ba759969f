"""Async tools on the real worker: 202 + task URL over HTTP, and the task services the MCP methods use."""
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
import pytest

from mcp_tools.exceptions import InvalidArguments, TaskNotCancellable, TaskNotFound
from mcp_tools.models import AuditEvent, Tool, ToolTask
from mcp_tools.services import tasks as task_services
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue, token_revoke
from mcp_tools.services.tools import tool_save
from tests.helpers import wait_until
from tickets.models import Ticket


def _async_tool(name, kind, **extra):
    return tool_save(tool=Tool(name=name, description=name, kind=kind, execution=Tool.Execution.ASYNC,
                               input_schema={"type": "object"}, **extra))


@pytest.fixture
def tokens(transactional_db):
    return token_issue(name="owner", all_tools=True), token_issue(name="other", all_tools=True)


def _auth(issued):
    return {"Authorization": f"Bearer {issued.secret}"}


@pytest.mark.worker
class TestOverRest:
    def test_an_async_tool_answers_202_and_its_url_reports_the_result(self, celery_worker, api, tokens):
        _async_tool("slow_echo", "echo")
        owner, _ = tokens
        response = api.post("/mcp/v1/tools/invoke", json={"name": "slow_echo", "arguments": {"text": "hi"}},
                            headers=_auth(owner))
        assert response.status_code == 202, response.text
        body = response.json()
        task_id = body["task_id"]
        assert body == {"success": True, "task_id": task_id, "status": "working",
                        "status_url": f"/mcp/v1/tasks/{task_id}"}
        assert response.headers["Location"] == body["status_url"]
        wait_until(lambda: api.get(body["status_url"], headers=_auth(owner)).json()["status"] == "completed",
                   timeout=30)
        done = api.get(body["status_url"], headers=_auth(owner)).json()
        assert done["success"] is True and done["result"] == {"echo": {"text": "hi"}}
        assert done["task"]["taskId"] == task_id and done["task"]["ttl"] > 0
        outcomes = list(AuditEvent.objects.filter(task_id=task_id).order_by("pk").values_list("outcome", flat=True))
        assert outcomes == ["queued", "ok"]
        assert ToolTask.objects.get(pk=task_id).arguments is None  # real arguments kept only while needed

    def test_only_the_same_token_can_read_a_task(self, celery_worker, api, tokens):
        _async_tool("slow_echo", "echo")
        owner, other = tokens
        url = api.post("/mcp/v1/tools/invoke", json={"name": "slow_echo", "arguments": {}},
                       headers=_auth(owner)).json()["status_url"]
        assert api.get(url, headers=_auth(other)).status_code == 404
        assert api.get(url).status_code == 401
        assert api.get("/mcp/v1/tasks/no-such-task", headers=_auth(owner)).status_code == 404
        assert api.get(url, headers=_auth(owner)).status_code == 200

    def test_a_tool_error_is_reported_as_a_failed_task(self, celery_worker, api, tokens):
        _async_tool("broken_async", "no_such_kind")
        owner, _ = tokens
        url = api.post("/mcp/v1/tools/invoke", json={"name": "broken_async", "arguments": {}},
                       headers=_auth(owner)).json()["status_url"]
        wait_until(lambda: api.get(url, headers=_auth(owner)).json()["status"] == "failed", timeout=30)
        body = api.get(url, headers=_auth(owner)).json()
        assert body["success"] is False and "misconfigured" in body["error"]
        assert body["error_code"] == "tool_error"
        task_id = url.rsplit("/", 1)[-1]
        assert AuditEvent.objects.filter(task_id=task_id, outcome="tool_error").count() == 1

    def test_invalid_arguments_are_refused_before_any_task_exists(self, celery_worker, api, tokens):
        tool = _async_tool("strict_async", "echo")
        tool.input_schema = {"type": "object", "required": ["text"]}
        tool_save(tool=tool)
        response = api.post("/mcp/v1/tools/invoke", json={"name": "strict_async", "arguments": {}},
                            headers=_auth(tokens[0]))
        assert response.status_code == 400
        assert not ToolTask.objects.exists()


@pytest.mark.worker
def test_an_atomic_tool_runs_exactly_once_on_the_worker(celery_worker, tokens):
    _async_tool("async_ticket", "create_ticket")
    caller = Caller(token=tokens[0].token)
    queued = tool_invoke(name="async_ticket", arguments={"title": "Async", "description": "d"}, caller=caller)
    assert queued.outcome == "queued" and queued.task_id
    task = task_services.task_result(task_id=queued.task_id, caller=caller, timeout_s=30)
    assert task.status == "completed"
    assert task.result["ticket_id"].startswith("TICK-")
    assert Ticket.objects.filter(title="Async").count() == 1
    # A redelivered message finds the task finished and does nothing.
    assert task_services.task_run(task_id=queued.task_id).status == "completed"
    assert Ticket.objects.filter(title="Async").count() == 1


def _task(token, **fields):
    now = timezone.now()
    fields.setdefault("created_at", now)
    fields.setdefault("expires_at", now + timedelta(hours=1))
    fields.setdefault("arguments", {})
    return ToolTask.objects.create(tool_name="t", token=token, ttl_s=3600, **fields)


class TestTaskServices:
    def test_list_is_paginated_and_only_the_callers(self, tokens):
        owner, other = tokens
        start = timezone.now()
        mine = [_task(owner.token, created_at=start - timedelta(seconds=i)) for i in range(5)]
        _task(other.token)
        caller = Caller(token=owner.token)
        page, cursor = task_services.tasks_list(caller=caller, limit=2)
        seen = [t.pk for t in page]
        while cursor:
            page, cursor = task_services.tasks_list(caller=caller, cursor=cursor, limit=2)
            seen += [t.pk for t in page]
        assert seen == [t.pk for t in mine]

    def test_a_bad_cursor_is_a_clear_error(self, tokens):
        with pytest.raises(InvalidArguments):
            task_services.tasks_list(caller=Caller(token=tokens[0].token), cursor="!!!")

    def test_get_hides_other_callers_tasks(self, tokens):
        task = _task(tokens[0].token)
        with pytest.raises(TaskNotFound):
            task_services.task_get(task_id=task.pk, caller=Caller(token=tokens[1].token))

    def test_cancel_stops_a_task_before_it_runs(self, tokens):
        tool = _async_tool("async_ticket", "create_ticket")
        task = _task(tokens[0].token, tool=tool, arguments={"title": "never", "description": "d"})
        cancelled = task_services.task_cancel(task_id=task.pk, caller=Caller(token=tokens[0].token))
        assert cancelled.status == "cancelled"
        with pytest.raises(TaskNotCancellable):
            task_services.task_cancel(task_id=task.pk, caller=Caller(token=tokens[0].token))
        assert task_services.task_run(task_id=task.pk).status == "cancelled"
        assert not Ticket.objects.exists()

    def test_a_revoked_token_stops_its_queued_tasks(self, tokens):
        tool = _async_tool("async_ticket", "create_ticket")
        task = _task(tokens[0].token, tool=tool, arguments={"title": "never", "description": "d"})
        token_revoke(token=tokens[0].token)
        assert task_services.task_run(task_id=task.pk).status == "failed"
        task.refresh_from_db()
        assert task.error_code == "not_permitted" and not Ticket.objects.exists()

    def test_a_task_whose_worker_died_is_failed_not_rerun(self, tokens):
        tool = _async_tool("async_ticket", "create_ticket", timeout_s=5)
        task = _task(tokens[0].token, tool=tool, started_at=timezone.now() - timedelta(minutes=5))
        assert task_services.task_run(task_id=task.pk).status == "failed"
        task.refresh_from_db()
        assert task.error_code == "worker_lost" and "partly run" in task.error_message

    def test_a_task_still_running_elsewhere_is_looked_at_again_later(self, tokens):
        tool = _async_tool("async_ticket", "create_ticket", timeout_s=5)
        task = _task(tokens[0].token, tool=tool, started_at=timezone.now())
        step = task_services.task_run(task_id=task.pk)
        assert step.status == "running_elsewhere" and 60 < step.retry_in_s <= 66

    def test_a_crashing_tool_fails_with_a_generic_message(self, tokens):
        tool = _async_tool("async_explode", "test_explode")  # a test-only kind: run in this process
        task = _task(tokens[0].token, tool=tool, request_id="req-42")
        assert task_services.task_run(task_id=task.pk).status == "failed"
        task.refresh_from_db()
        assert task.error_code == "internal_error" and "req-42" in task.error_message
        assert "hunter2" not in task.error_message
        assert AuditEvent.objects.get(task_id=task.pk).outcome == "internal_error"

    def test_cleanup_deletes_expired_results_only(self, tokens, capsys):
        past = timezone.now() - timedelta(seconds=1)
        expired = _task(tokens[0].token, status="completed", expires_at=past)
        expired_unstarted = _task(tokens[0].token, expires_at=past)
        kept = _task(tokens[0].token, status="completed")
        call_command("cleanup_tasks")
        assert "Deleted 2 expired task(s)" in capsys.readouterr().out
        assert list(ToolTask.objects.values_list("pk", flat=True)) == [kept.pk]
        assert not ToolTask.objects.filter(pk__in=[expired.pk, expired_unstarted.pk]).exists()

    def test_a_ttl_must_be_positive(self, tokens):
        _async_tool("slow_echo", "echo")
        result = tool_invoke(name="slow_echo", arguments={}, caller=Caller(token=tokens[0].token), task_ttl_s=-5)
        assert result.outcome == "invalid" and "ttl" in result.message


def test_the_admin_lists_tasks_without_their_arguments(admin_client, tokens):
    task = _task(tokens[0].token, arguments={"card_number": "4111111111111111"}, status="completed")
    listing = admin_client.get("/admin/mcp_tools/tooltask/?status__exact=completed").content.decode()
    assert task.pk in listing
    detail = admin_client.get(f"/admin/mcp_tools/tooltask/{task.pk}/change/").content.decode()
    assert "4111111111111111" not in detail


def test_an_admin_cancels_unfinished_tasks_and_support_staff_cannot(admin_client, tokens, django_user_model):
    from django.contrib.auth.models import Permission

    from mcp_tools.services.live_events import task_events_listen

    working = _task(tokens[0].token)
    done = _task(tokens[0].token, status="completed")
    data = {"action": "cancel_tasks", "_selected_action": [working.pk, done.pk]}
    with task_events_listen(task_id=working.pk) as events:
        response = admin_client.post("/admin/mcp_tools/tooltask/", data, follow=True)
        event = events.next(timeout=2)
    assert "Cancelled 1 task(s)" in response.content.decode()
    working.refresh_from_db(), done.refresh_from_db()
    assert working.status == "cancelled" and working.status_message == "Cancelled by an administrator (admin)."
    assert done.status == "completed"
    assert event == {"type": "status", "status": "cancelled"}  # a waiting tasks/result hears it at once

    helpdesk = django_user_model.objects.create_user("helpdesk", "h@example.com", "pw", is_staff=True)
    helpdesk.user_permissions.add(*Permission.objects.filter(codename="view_tooltask"))  # may read, not change
    admin_client.force_login(helpdesk)
    other = _task(tokens[0].token)
    listing = admin_client.get("/admin/mcp_tools/tooltask/")
    assert listing.status_code == 200 and "cancel_tasks" not in listing.content.decode()
    admin_client.post("/admin/mcp_tools/tooltask/", {"action": "cancel_tasks", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.status == "working"
