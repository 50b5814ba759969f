"""MCP tasks (long-running tool calls) on top of the ToolTask rows, in both protocol eras.

* Handshake era, revision 2025-11-25 only: the ``tasks`` capability, task-augmented
  ``tools/call`` (``params.task``) answered with a CreateTaskResult, ``tasks/get``,
  ``tasks/result`` (waits, then the original CallToolResult), ``tasks/list`` (only the
  caller's, paginated) and ``tasks/cancel``; ``execution.taskSupport`` per tool.
* Stateless era (2026-07-28): the ``io.modelcontextprotocol/tasks`` extension: the server
  decides (async tools become tasks; ``resultType: "task"``), ``tasks/get`` inlines the
  result or error, ``tasks/update`` and ``tasks/cancel`` answer an empty ack.

Every call still goes through the one invocation pipeline (``tool_invoke(as_task=True)``);
reading, listing and cancelling go through ``mcp_tools.services.tasks``, which only ever
shows a caller its own tasks.
"""
from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.db import connections

from ..exceptions import InvalidArguments, TaskNotCancellable, TaskNotFound
from ..models import Tool, ToolTask
from ..protocol import Era, ProtocolError
from ..protocol.context import MissingClientCapability, NullOutbound
from ..protocol.dispatcher import Dispatcher
from ..protocol.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, notification_message
from ..services import tasks as task_services
from ..services.live_events import task_wait_mark, task_wait_marked
from ..services.invocation import Invocation

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
RELATED_TASK = "io.modelcontextprotocol/related-task"
TASKS_REVISION = "2025-11-25"  # the one handshake revision that has tasks
# How long one tasks/result request waits for the task to finish before answering an error (the client asks again).
RESULT_WAIT_S = 120.0
HANDSHAKE_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}


# --- which tools may run as tasks --------------------------------------------------------------

def task_support(tool: Tool, *, anonymous: bool) -> str:
    """'required' for async tools, 'optional' for the rest; 'forbidden' when nobody could own the task."""
    if anonymous:
        return "forbidden"
    return "required" if tool.execution == Tool.Execution.ASYNC else "optional"


def handshake_tasks(ctx) -> bool:
    return ctx.era is Era.HANDSHAKE and ctx.protocol_version == TASKS_REVISION


def client_has_extension(ctx) -> bool:
    extensions = (ctx.client_capabilities or {}).get("extensions")
    return isinstance(extensions, dict) and isinstance(extensions.get(TASKS_EXTENSION), dict)


def require_extension(ctx) -> None:
    if not client_has_extension(ctx):
        raise MissingClientCapability({"extensions": {TASKS_EXTENSION: {}}})


# --- wire shapes ----------------------------------------------------------------------------------

def _timestamp(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def task_v1(task: ToolTask) -> dict[str, Any]:
    """The 2025-11-25 ``Task`` object (ttl and pollInterval in milliseconds)."""
    data: dict[str, Any] = {
        "taskId": task.pk, "status": task.status, "createdAt": _timestamp(task.created_at),
        "lastUpdatedAt": _timestamp(task.updated_at or task.created_at), "ttl": task.ttl_s * 1000,
        "pollInterval": task.poll_interval_ms,
    }
    message = task.status_message or task.error_message
    if message:
        data["statusMessage"] = message
    return data


def _is_protocol_failure(task: ToolTask) -> bool:
    """A run that broke (worker lost, internal error), as opposed to a tool that reported an error."""
    return task.status == ToolTask.Status.FAILED and task.outcome == "internal_error"


def task_v2(task: ToolTask, *, detailed: bool = False, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The extension's Task: ``ttlMs``/``pollIntervalMs``; ``detailed`` inlines result or error (tasks/get).

    A tool that ran and reported an error is ``completed`` with ``result.isError``;
    ``failed`` is kept for protocol-level failures, with an inlined JSON-RPC error.
    """
    status = task.status
    if status == ToolTask.Status.FAILED and not _is_protocol_failure(task):
        status = ToolTask.Status.COMPLETED
    data: dict[str, Any] = {
        "taskId": task.pk, "status": status, "createdAt": _timestamp(task.created_at),
        "lastUpdatedAt": _timestamp(task.updated_at or task.created_at), "ttlMs": task.ttl_s * 1000,
        "pollIntervalMs": task.poll_interval_ms,
    }
    message = task.status_message or task.error_message
    if message:
        data["statusMessage"] = message
    if detailed and status == ToolTask.Status.COMPLETED and result is not None:
        data["result"] = result
    elif detailed and status == ToolTask.Status.FAILED:
        data["error"] = {"code": INTERNAL_ERROR, "message": task.error_message or "The task failed.",
                         "data": {"reason": task.error_code or "internal_error"}}
    return data


def original_result(backend, task: ToolTask) -> dict[str, Any] | None:
    """The CallToolResult the same call would have answered synchronously (None while not finished)."""
    if task.status == ToolTask.Status.COMPLETED:
        return backend.tool_call_result(task.tool, Invocation(outcome="ok", result=task.result))
    if task.status in (ToolTask.Status.FAILED, ToolTask.Status.CANCELLED):
        return backend.tool_call_result(task.tool, Invocation(
            outcome=task.outcome or "tool_error", error_code=task.error_code,
            message=task.error_message or f"The task ended {task.status}."), hide=False)
    return None


# --- tools/call hook (called by DjangoBackend.call_tool) ------------------------------------------

def call_mode(ctx, tool: Tool, *, anonymous: bool) -> str:
    """How to run this tools/call: 'sync', 'task' (answer a CreateTaskResult) or 'legacy' (queued text).

    Raises the protocol error when the call is not allowed in this form.
    """
    support = task_support(tool, anonymous=anonymous)
    if handshake_tasks(ctx):
        wants_task = "task" in ctx.params
        if wants_task and not isinstance(ctx.params["task"], dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'task' must be an object")
        if wants_task and support == "forbidden":
            raise ProtocolError(METHOD_NOT_FOUND, f"Tool '{tool.name}' cannot run as a task here "
                                                  "(sign in with a token to run tools as tasks).")
        if not wants_task and support == "required":
            raise ProtocolError(METHOD_NOT_FOUND, f"Tool '{tool.name}' runs in the background: call it as a "
                                                  "task (params.task) and follow it with tasks/get and tasks/result.")
        return "task" if wants_task else "sync"
    if ctx.era is Era.STATELESS and tool.execution == Tool.Execution.ASYNC:
        require_extension(ctx)  # the tool only runs as a task; the client must be able to follow one
        return "task"
    return "legacy" if tool.execution == Tool.Execution.ASYNC else "sync"


def requested_ttl_s(ctx) -> int | None:
    task = ctx.params.get("task") if handshake_tasks(ctx) else None
    ttl = task.get("ttl") if isinstance(task, dict) else None
    if ttl is None:
        return None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
        raise ProtocolError(INVALID_PARAMS, "Invalid params: task.ttl must be a positive integer (milliseconds)")
    return min(math.ceil(ttl / 1000), settings.MCP_TASK_MAX_TTL_S)


def create_task_result(ctx, invocation: Invocation) -> dict[str, Any]:
    task = ToolTask.objects.get(pk=invocation.task_id)
    if ctx.era is Era.STATELESS:
        return {**task_v2(task), "resultType": "task"}
    return {"task": task_v1(task)}


def refused(invocation: Invocation) -> ProtocolError:
    """The pipeline refused to queue a task-augmented call: a JSON-RPC error (there is no task to point to)."""
    message = invocation.message
    if invocation.retry_after_s:
        message = f"{message} Retry after {invocation.retry_after_s}s."
    code = INVALID_PARAMS if invocation.error_code == "invalid_arguments" else INTERNAL_ERROR
    return ProtocolError(code, message, {"reason": invocation.error_code})


# --- live notifications while tasks/result waits ----------------------------------------------------

def task_progress_params(*, token: Any, task_id: str, event: dict[str, Any]) -> dict[str, Any]:
    """``notifications/progress`` params for a worker's progress event, with the related-task ``_meta``."""
    params: dict[str, Any] = {"progressToken": token, "progress": event["progress"]}
    if event.get("total") is not None:
        params["total"] = event["total"]
    if event.get("message"):
        params["message"] = event["message"]
    params["_meta"] = {RELATED_TASK: {"taskId": task_id}}
    return params


class TaskRelay:
    """Passes a running task's events to the client waiting on ``tasks/result`` (when it reads SSE).

    Progress goes out as ``notifications/progress`` with the progressToken of the original
    task-augmented call (valid for the task's lifetime) and the related-task ``_meta``;
    status changes as ``notifications/tasks/status`` carrying the whole Task. On a plain JSON
    answer the protocol layer drops notifications, so nothing changes for such clients.
    """

    def __init__(self, ctx, task: ToolTask) -> None:
        self.ctx = ctx
        self.task_id = task.pk
        self.token = task.progress_token
        self.streams = not isinstance(ctx.outbound, NullOutbound)  # a plain JSON answer carries no notifications
        self.marked_at = 0.0

    def should_stop(self) -> bool:
        """The wait's stop check (true: the client is gone); also renews the "this wait relays the task" mark."""
        now = time.monotonic()
        if self.streams and now - self.marked_at >= 1.0:
            task_wait_mark(task_id=self.task_id)
            self.marked_at = now
        return self.ctx.is_cancelled()

    def progress(self, event: dict[str, Any]) -> None:
        if self.token is None:
            return  # the client did not ask for progress
        self.ctx.send_notification("notifications/progress",
                                   task_progress_params(token=self.token, task_id=self.task_id, event=event))

    def status(self, task: ToolTask) -> None:
        self.ctx.send_notification("notifications/tasks/status", task_v1(task))


class SessionTaskNotices:
    """Events of a session's tasks as the notifications its GET stream carries.

    Status changes become ``notifications/tasks/status`` (the whole Task, re-read); progress
    becomes ``notifications/progress`` with the task's own progressToken (only tasks that were
    given one) and the related-task ``_meta``. Nothing while a ``tasks/result`` wait streams
    the task (it relays the same events: the client must not hear them twice). The task rows
    are read without holding a database connection between events.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, Any] = {}

    def _task(self, task_id: str) -> ToolTask | None:
        try:
            return ToolTask.objects.filter(pk=task_id).first()
        finally:
            connections.close_all()

    def messages(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        task_id = event.get("taskId")
        if not isinstance(task_id, str) or task_wait_marked(task_id=task_id):
            return []
        if event.get("type") == "status":
            task = self._task(task_id)
            return [notification_message("notifications/tasks/status", task_v1(task))] if task else []
        if event.get("type") != "progress":
            return []
        if task_id not in self._tokens:
            task = self._task(task_id)
            self._tokens[task_id] = task.progress_token if task else None
        token = self._tokens[task_id]
        if token is None:
            return []
        return [notification_message("notifications/progress",
                                     task_progress_params(token=token, task_id=task_id, event=event))]


# --- the task methods -------------------------------------------------------------------------------

class TaskMethods:
    def __init__(self, backend) -> None:
        self.backend = backend

    def _caller(self, ctx):
        from .mcp_backend import _principal

        return _principal(ctx).caller(protocol_version=ctx.protocol_version)

    def _task_id(self, ctx) -> str:
        value = ctx.params.get("taskId")
        if not isinstance(value, str) or not value:
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'taskId' must be a non-empty string")
        return value

    def _check_era(self, ctx) -> None:
        if ctx.era is Era.STATELESS:
            require_extension(ctx)
        elif ctx.protocol_version != TASKS_REVISION:
            raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {ctx.method}")

    def _task(self, ctx) -> ToolTask:
        self._check_era(ctx)
        try:
            return task_services.task_get(task_id=self._task_id(ctx), caller=self._caller(ctx))
        except TaskNotFound as exc:
            raise ProtocolError(INVALID_PARAMS, exc.message, {"taskId": ctx.params.get("taskId")}) from None

    def get(self, ctx) -> dict[str, Any]:
        task = self._task(ctx)
        if ctx.era is Era.STATELESS:
            return task_v2(task, detailed=True, result=original_result(self.backend, task))
        return task_v1(task)

    def result(self, ctx) -> dict[str, Any]:
        task = self._task(ctx)
        relay = TaskRelay(ctx, task)
        relay.should_stop()  # marks the task as relayed here before the wait begins
        task = task_services.task_result(task_id=task.pk, caller=self._caller(ctx), timeout_s=RESULT_WAIT_S,
                                         on_progress=relay.progress, on_status=relay.status,
                                         stop=relay.should_stop)
        if not task.is_terminal:
            raise ProtocolError(INTERNAL_ERROR, f"Task '{task.pk}' is still running; call tasks/result again.",
                                {"taskId": task.pk, "status": task.status})
        result = dict(original_result(self.backend, task) or {})
        meta = dict(result.get("_meta") or {})
        meta[RELATED_TASK] = {"taskId": task.pk}
        result["_meta"] = meta
        return result

    def list(self, ctx) -> dict[str, Any]:
        self._check_era(ctx)
        cursor = ctx.params.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'cursor' must be a string")
        try:
            tasks, next_cursor = task_services.tasks_list(caller=self._caller(ctx), cursor=cursor,
                                                          limit=settings.MCP_PAGE_SIZE)
        except InvalidArguments as exc:
            raise ProtocolError(INVALID_PARAMS, exc.message) from None
        result: dict[str, Any] = {"tasks": [task_v1(t) for t in tasks]}
        if next_cursor:
            result["nextCursor"] = next_cursor
        return result

    def cancel(self, ctx) -> dict[str, Any]:
        task = self._task(ctx)
        try:
            task = task_services.task_cancel(task_id=task.pk, caller=self._caller(ctx))
        except TaskNotCancellable as exc:
            if ctx.era is Era.STATELESS:
                return {}  # the extension's cancel is idempotent: the same empty ack
            raise ProtocolError(INVALID_PARAMS, exc.message, {"taskId": task.pk, "status": task.status}) from None
        return {} if ctx.era is Era.STATELESS else task_v1(task)

    def update(self, ctx) -> dict[str, Any]:
        self._task(ctx)
        responses = ctx.params.get("inputResponses")
        if not isinstance(responses, dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'inputResponses' must be an object")
        return {}  # these tasks never wait for input; nothing to deliver


def install_tasks(dispatcher: Dispatcher, backend) -> Dispatcher:
    """Register the task methods and the capability advertisement on a product dispatcher."""
    methods = TaskMethods(backend)
    both = (Era.HANDSHAKE, Era.STATELESS)
    dispatcher.register("tasks/get", methods.get, both)
    dispatcher.register("tasks/cancel", methods.cancel, both)
    dispatcher.register("tasks/result", methods.result, (Era.HANDSHAKE,))
    dispatcher.register("tasks/list", methods.list, (Era.HANDSHAKE,))
    dispatcher.register("tasks/update", methods.update, (Era.STATELESS,))
    # Capabilities differ per revision (the dispatcher's are per era): add them to the two handshake answers.
    initialize = dispatcher.handler("initialize")

    def initialize_with_tasks(ctx):
        outcome = initialize(ctx)
        if outcome.result.get("protocolVersion") == TASKS_REVISION:
            outcome.result["capabilities"] = {**outcome.result["capabilities"], "tasks": HANDSHAKE_CAPABILITY}
        return outcome

    dispatcher.register("initialize", initialize_with_tasks, (Era.HANDSHAKE,))
    advertise_tasks_extension(dispatcher)
    return dispatcher


def advertise_tasks_extension(dispatcher) -> None:
    """Make ``server/discover`` (2026-07-28) list the tasks extension."""
    discover = dispatcher.handler("server/discover")

    def discover_with_tasks(ctx):
        result = discover(ctx)
        capabilities = dict(result.get("capabilities") or {})
        capabilities["extensions"] = {**(capabilities.get("extensions") or {}), TASKS_EXTENSION: {}}
        return {**result, "capabilities": capabilities}

    dispatcher.register("server/discover", discover_with_tasks, (Era.STATELESS,))
