"""TEST ONLY: the tasks-extension fixtures of the conformance suite (``tasks-*`` scenarios).

Served only by the conformance fixture server (MCP_CONFORMANCE_FIXTURES=1, one gunicorn
process): tasks live in this process's memory and run in threads. The product's real
tasks (ToolTask rows run by Celery) are in ``mcp_tasks.py``; these fixtures only answer
what the suite's scenarios name (greet, slow_compute, failing_job, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
import threading
import time
from typing import Any, Callable
import uuid

from ..protocol import Era, InputRequired, ProtocolError
from ..protocol import content as c
from ..protocol.context import elicitation_request
from ..protocol.dispatcher import Dispatcher
from ..protocol.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from .mcp_tasks import advertise_tasks_extension, client_has_extension, require_extension

TTL_MS = 10 * 60 * 1000
POLL_MS = 200
MAX_TASKS = 1000
TERMINAL = ("completed", "failed", "cancelled")
CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _tool(name, description, properties=None, required=()):
    schema = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = list(required)
    return {"name": name, "description": description, "inputSchema": schema}


TOOLS = [
    _tool("greet", "Greets (synchronous)", {"name": {"type": "string"}}, ["name"]),
    _tool("slow_compute", "Sleeps then answers (task optional)", {"seconds": {"type": "number"}}),
    _tool("failing_job", "Fails with a tool error after about a second (task required)"),
    _tool("protocol_error_job", "Breaks with a protocol error (task optional)"),
    _tool("confirm_delete", "Asks for a confirmation, then answers (task required)",
          {"path": {"type": "string"}}),
    _tool("multi_input", "Asks two questions at once, then answers (task required)"),
    _tool("test_tool_with_task", "Asks for a name, then runs as a task (task required)"),
]
TOOL_NAMES = frozenset(t["name"] for t in TOOLS)
REQUIRED = frozenset({"failing_job", "confirm_delete", "multi_input", "test_tool_with_task"})


class _Cancelled(Exception):
    pass


class _Failed(Exception):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class FixtureTask:
    task_id: str
    status: str = "working"
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    pending: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _set(self, status: str) -> None:
        self.status, self.updated_at = status, _now()

    def wait(self, seconds: float) -> None:
        """Sleep, waking up at once when the task is cancelled."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while self.status != "cancelled" and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
            if self.status == "cancelled":
                raise _Cancelled()

    def ask(self, requests: dict[str, Any]) -> dict[str, Any]:
        """Park in input_required until every request is answered (tasks/update), then go on working."""
        with self.cond:
            self.pending = dict(requests)
            self._set("input_required")
            self.cond.notify_all()
            while self.pending and self.status != "cancelled":
                self.cond.wait(1)
            if self.status == "cancelled":
                raise _Cancelled()
            self._set("working")
            return {k: self.answers.pop(k) for k in requests}

    def view(self, *, detailed: bool) -> dict[str, Any]:
        data = {"taskId": self.task_id, "status": self.status, "createdAt": self.created_at,
                "lastUpdatedAt": self.updated_at, "ttlMs": TTL_MS, "pollIntervalMs": POLL_MS}
        if detailed:
            if self.status == "completed" and self.result is not None:
                data["result"] = self.result
            elif self.status == "failed" and self.error is not None:
                data["error"] = self.error
            elif self.status == "input_required":
                data["inputRequests"] = dict(self.pending)
        return data


class FixtureTasks:
    def __init__(self) -> None:
        self.tasks: dict[str, FixtureTask] = {}
        self.lock = threading.Lock()

    def start(self, body: Callable[[FixtureTask], dict[str, Any]]) -> FixtureTask:
        task = FixtureTask(task_id=uuid.uuid4().hex)
        with self.lock:
            if len(self.tasks) >= MAX_TASKS:  # a test fixture: forget the oldest
                self.tasks.pop(next(iter(self.tasks)))
            self.tasks[task.task_id] = task
        threading.Thread(target=self._run, args=(task, body), daemon=True).start()
        return task

    def _run(self, task: FixtureTask, body) -> None:
        try:
            result = body(task)
            with task.cond:
                if task.status != "cancelled":
                    task.result = result
                    task._set("completed")
        except _Cancelled:
            pass
        except Exception as exc:  # _Failed and anything unexpected: a protocol-level failure
            with task.cond:
                if task.status != "cancelled":
                    task.error = {"code": INTERNAL_ERROR, "message": str(exc) or "The job failed."}
                    task._set("failed")
        with task.cond:
            task.cond.notify_all()

    def get(self, task_id: Any) -> FixtureTask:
        task = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise ProtocolError(INVALID_PARAMS, f"Unknown task: {str(task_id)[:64]}", {"taskId": task_id})
        return task


# --- the fixture tools -------------------------------------------------------------------------------

def _slow(seconds: float):
    def body(task: FixtureTask):
        task.wait(seconds)
        return c.tool_result([c.text(f"Computed after {seconds:g} seconds.")])
    return body


def _failing(task: FixtureTask):
    task.wait(1)
    return c.tool_error("failing_job always fails.")


def _protocol_error(task: FixtureTask):
    raise _Failed("protocol_error_job broke with an internal error.")


def _confirm_delete(path: str):
    def body(task: FixtureTask):
        answers = task.ask({"confirm": {"method": "elicitation/create",
                                        "params": elicitation_request(f"Delete {path}?", CONFIRM_SCHEMA)["params"]}})
        reply = answers["confirm"] if isinstance(answers["confirm"], dict) else {}
        confirmed = reply.get("action") == "accept" and (reply.get("content") or {}).get("confirm") is not False
        return c.tool_result([c.text(f"Deleted {path}." if confirmed else f"Kept {path}.")])
    return body


def _multi_input(task: FixtureTask):
    answers = task.ask({
        "name": {"method": "elicitation/create", "params": elicitation_request("What is your name?",
                                                                               NAME_SCHEMA)["params"]},
        "color": {"method": "elicitation/create", "params": elicitation_request(
            "What is your favorite color?", {"type": "object", "properties": {"color": {"type": "string"}},
                                             "required": ["color"]})["params"]},
    })
    name = ((answers["name"] or {}).get("content") or {}).get("name", "?")
    color = ((answers["color"] or {}).get("content") or {}).get("color", "?")
    return c.tool_result([c.text(f"{name} likes {color}.")])


def _greeting(name: str):
    def body(task: FixtureTask):
        task.wait(0.2)
        return c.tool_result([c.text(f"Hello, {name}! (from a task)")])
    return body


def call(store: FixtureTasks, ctx, name: str, arguments: dict[str, Any]):
    """tools/call of a tasks fixture: a CreateTaskResult (extension negotiated) or the sync answer."""
    if name == "greet":
        return c.tool_result([c.text(f"Hello, {arguments.get('name', 'world')}!")])
    if name in REQUIRED:
        require_extension(ctx)
    as_task = ctx.era is Era.STATELESS and client_has_extension(ctx)
    if name == "slow_compute":
        seconds = arguments.get("seconds", 1)
        seconds = max(0.0, min(float(seconds), 60.0)) if isinstance(seconds, (int, float)) else 1.0
        body = _slow(seconds)
    elif name == "protocol_error_job":
        body = _protocol_error
    elif name == "failing_job":
        body = _failing
    elif name == "confirm_delete":
        body = _confirm_delete(str(arguments.get("path") or "/tmp/example"))
    elif name == "multi_input":
        body = _multi_input
    else:  # test_tool_with_task: MRTR first, then a task
        reply = (ctx.input_responses or {}).get("user_name")
        content = reply.get("content") if isinstance(reply, dict) else None
        if not isinstance(content, dict) or not isinstance(content.get("name"), str):
            return InputRequired({"user_name": elicitation_request("What is your name?", NAME_SCHEMA)})
        body = _greeting(content["name"])
    if not as_task:  # a task-optional fixture for a client without the extension: answer in the request
        try:
            return body(FixtureTask(task_id="sync"))
        except _Failed as exc:
            raise ProtocolError(INTERNAL_ERROR, str(exc)) from None
    task = store.start(body)
    return {**task.view(detailed=False), "resultType": "task"}


def install(dispatcher: Dispatcher, store: FixtureTasks) -> Dispatcher:
    """Register tasks/get|update|cancel (2026-07-28) and advertise the extension in server/discover."""

    def get(ctx):
        require_extension(ctx)
        task = store.get(ctx.params.get("taskId"))
        with task.cond:
            return task.view(detailed=True)

    def update(ctx):
        require_extension(ctx)
        task = store.get(ctx.params.get("taskId"))
        responses = ctx.params.get("inputResponses")
        if not isinstance(responses, dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'inputResponses' must be an object")
        with task.cond:
            for key, value in responses.items():
                if key in task.pending:
                    task.answers[key] = value
                    del task.pending[key]
            task.updated_at = _now()
            task.cond.notify_all()
        return {}

    def cancel(ctx):
        require_extension(ctx)
        task = store.get(ctx.params.get("taskId"))
        with task.cond:
            if task.status not in TERMINAL:
                task._set("cancelled")
                task.pending = {}
                task.cond.notify_all()
        return {}

    dispatcher.register("tasks/get", get, (Era.STATELESS,))
    dispatcher.register("tasks/update", update, (Era.STATELESS,))
    dispatcher.register("tasks/cancel", cancel, (Era.STATELESS,))
    advertise_tasks_extension(dispatcher)
    return dispatcher
