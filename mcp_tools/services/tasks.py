"""Async tool runs (MCP tasks): create, run on a worker, read, list, cancel, wait, clean up.

Plain functions with keyword-only arguments, so every transport (the REST pair,
the MCP task methods of either protocol era) calls the same code:

* ``task_create``  – called by the invocation pipeline for async tools;
* ``task_run``     – called by the Celery task ``mcp_tools.tasks.run_tool_task``;
* ``task_get`` / ``tasks_list`` / ``task_cancel`` / ``task_result`` – for callers;
* ``tasks_cleanup`` – the periodic job (beat and ``manage.py cleanup_tasks``).

A task is visible only to the caller that created it (same API token, or the same
user for calls without an API token: admin, OAuth); anyone else gets TaskNotFound.
Anonymous callers (public endpoints) cannot own tasks, so async tools refuse them.
"""
import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
import json
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..exceptions import (
    InvalidArguments,
    InvocationError,
    NotPermitted,
    TaskNotCancellable,
    TaskNotFound,
    ToolDisabled,
)
from ..models import ToolTask
from .audit import audit_record
from .broker import broker_check, broker_publish
from .live_events import FALLBACK_POLL_S, task_event_publish, task_events_listen

logger = logging.getLogger("mcp_tools.tasks")

# A worker that finds no task row (yet) looks again this often, this many times.
MISSING_ROW_RETRY_S = 1
MISSING_ROW_MAX_RETRIES = 5
# A started task whose worker has been silent for its timeout plus this grace is declared lost.
LEASE_GRACE_S = 60
# An unstarted task older than this lost its message: the cleanup job enqueues it again.
STALE_UNSTARTED_S = 300
TASKS_PAGE_SIZE = 50
TERMINAL = ToolTask.TERMINAL
# Progress is announced at most this often, and written to the row at most this often.
PROGRESS_PUBLISH_EVERY_S = 0.1
PROGRESS_STORE_EVERY_S = 1.0


def progress_token_valid(token) -> bool:
    """MCP progress tokens are strings or integers; keep only sane ones (they are stored and echoed back)."""
    if isinstance(token, bool):
        return False
    return (isinstance(token, str) and 0 < len(token) <= 256) or (isinstance(token, int) and abs(token) < 2 ** 63)


def _status_changed(task: ToolTask, status: str) -> None:
    task_event_publish(task_id=task.pk, session=task.session_key, event={"type": "status", "status": status})


def _enqueue(*, task_id: str, countdown: float | None = None) -> None:
    from ..tasks import run_tool_task

    run_tool_task.apply_async((task_id,), countdown=countdown)


def _enqueue_after_commit(task_id: str) -> None:
    """Publish once the row is committed. Never raises: a task the broker did not take is re-enqueued by
    ``tasks_cleanup`` (it stays 'working' and unstarted)."""
    def publish_committed():
        broker_publish(lambda: _enqueue(task_id=task_id), what=f"task {task_id}")
    transaction.on_commit(publish_committed)


def task_create(*, tool, arguments: dict, caller, request_id: str, started: float, ttl_s: int | None = None,
                progress_token=None, session_key: str = ""):
    """Record the task and its 'queued' audit event, and enqueue it after commit.

    ``progress_token`` (the client's, from the task-augmented call) stays valid for the
    task's lifetime: progress the worker reports is relayed with it, on a ``tasks/result``
    stream or on the GET stream of the session (``session_key``) that created the task.

    Like notifications, a broker that is down is reported at once (ServiceUnavailable,
    HTTP 503) and nothing is written; the message is published only after commit so a
    worker never looks for a row that is not there yet.
    """
    from .invocation import Invocation

    if caller.api_token is None and caller.acting_user is None:
        raise NotPermitted(f"Tool '{tool.name}' runs in the background; sign in (a token or a user) to follow it.")
    broker_check(what=f"Running '{tool.name}' in the background")
    if ttl_s is not None and (not isinstance(ttl_s, int) or ttl_s < 1):
        raise InvalidArguments("A task's ttl must be a positive number of seconds.")
    ttl = min(ttl_s or settings.MCP_TASK_TTL_S, settings.MCP_TASK_MAX_TTL_S)
    now = timezone.now()
    with transaction.atomic():
        task = ToolTask.objects.create(
            tool=tool, tool_name=tool.name, token=caller.api_token,
            user=caller.acting_user if caller.api_token is None else None,
            arguments=arguments, request_id=request_id, transport=caller.transport, client_ip=caller.client_ip,
            protocol_version=caller.protocol_version, ttl_s=ttl, poll_interval_ms=settings.MCP_TASK_POLL_INTERVAL_MS,
            progress_token=progress_token if progress_token_valid(progress_token) else None,
            session_key=session_key[:32],
            created_at=now, updated_at=now, expires_at=now + timedelta(seconds=ttl),
        )
        duration_ms = (time.perf_counter() - started) * 1000
        event = audit_record(tool=tool, tool_name=tool.name, caller=caller, outcome="queued", arguments=arguments,
                             duration_ms=duration_ms, request_id=request_id, task_id=task.pk)
        _enqueue_after_commit(task.pk)
    return Invocation(outcome="queued", result=task_as_dict(task), task_id=task.pk, audit_id=event.pk,
                      duration_ms=duration_ms, tool=tool)


# --- the worker side ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskStep:
    status: str
    retry_in_s: float | None = None


class _Cancelled(Exception):
    """The task was cancelled while it ran: stop the kind and roll back what an atomic kind wrote."""


def _caller_of(task: ToolTask):
    from .invocation import Caller

    return Caller(token=task.token, user=task.user, client_ip=task.client_ip, transport=task.transport,
                  protocol_version=task.protocol_version)


_CONNECTION_ERRORS = (OperationalError, InterfaceError)


def _reconnect_for_retry(exc: Exception) -> bool:
    """After a lost database connection: drop it and say whether one retry is safe.

    Safe only outside a transaction (autocommit): inside one, the work it held is gone and a
    retry would run on a half state. The next query opens a fresh connection.
    """
    if connection.in_atomic_block:
        return False
    logger.warning("Database connection lost (%s: %s); reconnecting once.", type(exc).__name__, exc)
    connection.close()
    return True


def _autocommit_write(write):
    """``write()``, once more on a fresh connection if the first met a lost one (and no transaction is open)."""
    try:
        return write()
    except _CONNECTION_ERRORS as exc:
        if not _reconnect_for_retry(exc):
            raise
        return write()


def _finish(task: ToolTask, *, status: str, outcome: str, error_code: str = "", message: str = "",
            duration_ms: float = 0.0, audit_arguments=None) -> bool:
    """Record a failed/cancelled end (only if still working) and its audit event.

    Both writes are safe to repeat (a conditional update, then the audit insert), so a lost
    connection is replaced once instead of leaving the row 'working' until its lease runs out.
    """
    return _autocommit_write(lambda: _finish_once(task, status=status, outcome=outcome, error_code=error_code,
                                                  message=message, duration_ms=duration_ms,
                                                  audit_arguments=audit_arguments))


def _finish_once(task: ToolTask, *, status: str, outcome: str, error_code: str, message: str,
                 duration_ms: float, audit_arguments) -> bool:
    now = timezone.now()
    updated = ToolTask.objects.filter(pk=task.pk, status=ToolTask.Status.WORKING).update(
        status=status, outcome=outcome, error_code=error_code, error_message=message[:2000], arguments=None,
        finished_at=now, updated_at=now, status_message="")
    if updated:
        _status_changed(task, status)
    audit_record(tool=task.tool, tool_name=task.tool_name, caller=_caller_of(task), outcome=outcome,
                 arguments=audit_arguments if audit_arguments is not None else {}, error_code=error_code,
                 error_message=message, duration_ms=duration_ms, request_id=task.request_id, task_id=task.pk)
    return bool(updated)


def _not_claimed(task_id: str) -> TaskStep:
    task = ToolTask.objects.select_related("tool", "token", "user").filter(pk=task_id).first()
    if task is None:
        return TaskStep(status="missing", retry_in_s=MISSING_ROW_RETRY_S)
    if task.is_terminal:
        return TaskStep(status=task.status)
    timeout_s = (task.tool.timeout_s if task.tool else 0) or settings.MCP_DEFAULT_TOOL_TIMEOUT_S
    lease_end = task.started_at + timedelta(seconds=timeout_s + LEASE_GRACE_S)
    remaining = (lease_end - timezone.now()).total_seconds()
    if remaining > 0:
        return TaskStep(status="running_elsewhere", retry_in_s=remaining + 1)
    # Its worker died mid-run. The tool may have partly run, so it is not run a second time.
    _finish(task, status=ToolTask.Status.FAILED, outcome="internal_error", error_code="worker_lost",
            message="The worker running this task stopped before it finished; the tool may have partly run. "
                    "Check its effects before calling it again.")
    return TaskStep(status=ToolTask.Status.FAILED)


def _progress_reporter(task: ToolTask):
    """The ``report_progress`` a kind gets on a worker: announce live (throttled), store now and then.

    MCP requires progress to increase with every notification, so a report that does not
    move forward is dropped; so is one sooner than PROGRESS_PUBLISH_EVERY_S after the last.
    Storing is also where a running kind learns that its task was cancelled (the row is no
    longer 'working'): it raises _Cancelled, which stops the kind within about a second.
    """
    state = {"published_at": 0.0, "stored_at": 0.0, "progress": None}
    task_id, session = task.pk, task.session_key

    def report(progress, total=None, message=None):
        if isinstance(progress, bool) or not isinstance(progress, (int, float)):
            return
        now = time.monotonic()
        if state["progress"] is not None and progress <= state["progress"]:
            return
        if now - state["published_at"] < PROGRESS_PUBLISH_EVERY_S:
            return
        state["published_at"], state["progress"] = now, progress
        total = total if isinstance(total, (int, float)) and not isinstance(total, bool) else None
        message = str(message)[:500] if message else None
        task_event_publish(task_id=task_id, session=session, event={"type": "progress", "progress": progress,
                                                                    "total": total, "message": message})
        if now - state["stored_at"] < PROGRESS_STORE_EVERY_S:
            return
        state["stored_at"] = now
        text = message or (f"{progress:g}/{total:g}" if total else f"{progress:g}")
        working = ToolTask.objects.filter(pk=task_id, status=ToolTask.Status.WORKING)
        stored = _autocommit_write(lambda: working.update(
            status_message=text[:500], progress={"progress": progress, "total": total, "message": message},
            updated_at=timezone.now()))
        if not stored:
            raise _Cancelled()
    return report


def task_run(*, task_id: str) -> TaskStep:
    """Claim the task with a conditional update, run the tool through the shared run step, store the outcome.

    A redelivered message finds the task claimed and does not run it again.
    """
    from .invocation import tool_execute

    now = timezone.now()
    claimed = ToolTask.objects.filter(pk=task_id, status=ToolTask.Status.WORKING, started_at__isnull=True).update(
        started_at=now, attempts=F("attempts") + 1, status_message="Running", updated_at=now)
    if not claimed:
        return _not_claimed(task_id)
    task = ToolTask.objects.select_related("tool", "token", "user").get(pk=task_id)
    _status_changed(task, ToolTask.Status.WORKING)
    arguments = task.arguments or {}
    caller = _caller_of(task)
    started = time.perf_counter()

    def store(result):
        finished = timezone.now()

        def write():
            return ToolTask.objects.filter(pk=task.pk, status=ToolTask.Status.WORKING).update(
                status=ToolTask.Status.COMPLETED, result=result, outcome="ok", arguments=None,
                finished_at=finished, updated_at=finished, status_message="")
        def write_or_find():
            # A retry may find the first write already landed (the connection dropped on the answer).
            return write() or ToolTask.objects.filter(pk=task.pk, status=ToolTask.Status.COMPLETED,
                                                      finished_at=finished).exists()
        try:
            stored = write()
        except _CONNECTION_ERRORS as exc:
            # The tool has run: keep its result rather than lose it to a dropped connection.
            if not _reconnect_for_retry(exc):
                raise
            stored = write_or_find()
        if not stored:
            raise _Cancelled()
        # Announced after commit: a waiter that hears it must find the result in the row.
        transaction.on_commit(lambda: _status_changed(task, ToolTask.Status.COMPLETED))

    try:
        if task.expires_at <= now:
            raise InvocationError("The task expired before a worker could start it.")
        tool = task.tool
        if tool is None or not tool.enabled:
            raise ToolDisabled(f"Tool '{task.tool_name}' was disabled or removed before the task ran.")
        # Re-check an API token now: it may have been revoked while the task waited. (Other
        # callers were checked when the task was created.)
        if task.token is not None:
            if task.token.is_revoked or task.token.is_expired():
                raise NotPermitted("The API token that started this task was revoked or expired before it ran.")
            if not caller.may_use(tool):
                raise NotPermitted(f"This token may no longer call tool '{tool.name}'.")
        tool_execute(tool=tool, arguments=arguments, caller=caller, request_id=task.request_id, started=started,
                     report_progress=_progress_reporter(task), task_id=task.pk, on_result=store)
        return TaskStep(status=ToolTask.Status.COMPLETED)
    except _Cancelled:
        audit_record(tool=task.tool, tool_name=task.tool_name, caller=caller, outcome="tool_error",
                     arguments=arguments, error_code="cancelled", error_message="Cancelled before it finished.",
                     duration_ms=(time.perf_counter() - started) * 1000, request_id=task.request_id,
                     task_id=task.pk)
        return TaskStep(status=ToolTask.Status.CANCELLED)
    except InvocationError as exc:
        _finish(task, status=ToolTask.Status.FAILED, outcome=exc.outcome, error_code=exc.code, message=exc.message,
                duration_ms=(time.perf_counter() - started) * 1000, audit_arguments=arguments)
        return TaskStep(status=ToolTask.Status.FAILED)
    except _CONNECTION_ERRORS as exc:
        # The database went away while the tool ran or its result was stored (an atomic kind's work was
        # rolled back with its transaction). Say so at once, on a fresh connection, rather than leave the
        # row 'working' for the lease to expire into a misleading "worker lost".
        if not _reconnect_for_retry(exc):
            raise
        logger.error("Task %s of tool %r lost its database connection (request %s): %s", task.pk, task.tool_name,
                     task.request_id, exc)
        _finish(task, status=ToolTask.Status.FAILED, outcome="internal_error", error_code="database_unavailable",
                message="The database connection was lost while the tool ran or its result was stored; the tool "
                        "may have run. Check its effects before calling it again.",
                duration_ms=(time.perf_counter() - started) * 1000, audit_arguments=arguments)
        return TaskStep(status=ToolTask.Status.FAILED)
    except Exception:
        logger.exception("Task %s of tool %r failed unexpectedly (request %s)", task.pk, task.tool_name,
                         task.request_id)
        _finish(task, status=ToolTask.Status.FAILED, outcome="internal_error", error_code="internal_error",
                message=f"Internal error while running the tool. Quote request id {task.request_id} to support.",
                duration_ms=(time.perf_counter() - started) * 1000, audit_arguments=arguments)
        return TaskStep(status=ToolTask.Status.FAILED)


# --- the caller side ------------------------------------------------------------------------------------

def _owned_by(caller):
    """Tasks of the same API token; for other credentials (admin session, OAuth), of the same user."""
    if caller.api_token is not None:
        return ToolTask.objects.filter(token=caller.api_token)
    user = caller.acting_user
    if user is not None:
        return ToolTask.objects.filter(token__isnull=True, user=user)
    return ToolTask.objects.none()


def task_get(*, task_id: str, caller) -> ToolTask:
    task = _owned_by(caller).filter(pk=str(task_id)[:64]).first() if task_id else None
    if task is None:
        raise TaskNotFound(f"No task '{str(task_id)[:64]}' for this caller (it may have expired).")
    return task


def _encode_cursor(task: ToolTask) -> str:
    raw = json.dumps([task.created_at.isoformat(), task.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, pk = json.loads(raw)
        return datetime.fromisoformat(created), str(pk)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidArguments("Invalid cursor: pass back nextCursor exactly as it was returned.") from None


def tasks_list(*, caller, cursor: str | None = None, limit: int = TASKS_PAGE_SIZE) -> tuple[list[ToolTask], str | None]:
    """The caller's tasks, newest first, one page at a time; returns (tasks, next_cursor or None)."""
    tasks = _owned_by(caller).order_by("-created_at", "-id")
    if cursor:
        created, pk = _decode_cursor(cursor)
        tasks = tasks.filter(Q(created_at__lt=created) | Q(created_at=created, id__lt=pk))
    limit = max(1, min(int(limit), 100))
    page = list(tasks[:limit + 1])
    next_cursor = _encode_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor


def task_cancel(*, task_id: str, caller) -> ToolTask:
    """Cancel a task that has not finished. A running atomic tool's writes are rolled back."""
    task = task_get(task_id=task_id, caller=caller)
    now = timezone.now()
    updated = ToolTask.objects.filter(pk=task.pk, status__in=[ToolTask.Status.WORKING,
                                                              ToolTask.Status.INPUT_REQUIRED]).update(
        status=ToolTask.Status.CANCELLED, outcome="", error_code="cancelled",
        error_message="Cancelled by the client.", arguments=None, finished_at=now, updated_at=now,
        status_message="Cancelled by the client.")
    task.refresh_from_db()
    if not updated:
        raise TaskNotCancellable(f"Task '{task.pk}' already finished ({task.status}); it cannot be cancelled.")
    _status_changed(task, ToolTask.Status.CANCELLED)
    return task


def tasks_cancel_by_admin(*, task_ids, user) -> int:
    """Cancel unfinished tasks from the admin (a runaway or unwanted run); returns how many were cancelled.

    Same effect as the client's cancel: a running tool stops at its next progress report and
    an atomic tool's writes roll back; the message names who cancelled.
    """
    message = f"Cancelled by an administrator ({user.get_username()})."[:500]
    cancelled = 0
    for task in ToolTask.objects.filter(pk__in=list(task_ids)).only("pk", "session_key"):
        now = timezone.now()
        if ToolTask.objects.filter(pk=task.pk, status__in=[ToolTask.Status.WORKING,
                                                           ToolTask.Status.INPUT_REQUIRED]).update(
                status=ToolTask.Status.CANCELLED, outcome="", error_code="cancelled", error_message=message,
                arguments=None, finished_at=now, updated_at=now, status_message=message):
            _status_changed(task, ToolTask.Status.CANCELLED)
            cancelled += 1
    return cancelled


def task_result(*, task_id: str, caller, timeout_s: float = 300.0, on_progress=None, on_status=None,
                stop=None) -> ToolTask:
    """Wait until the task is finished (or ``timeout_s`` passes, or ``stop()`` is true) and return it.

    The caller checks ``task.is_terminal``; when true, ``task.result`` (completed) or
    ``task.error_code``/``task.error_message`` (failed, cancelled) is exactly the
    original outcome. While waiting, the worker's live events are passed on:
    ``on_progress(event)`` for progress, ``on_status(task)`` (the re-read row) when the
    status or status message changed. Wakes on the worker's events; re-reads the row at
    least every FALLBACK_POLL_S in case an event was lost.
    """
    task = task_get(task_id=task_id, caller=caller)
    if task.is_terminal:
        return task
    deadline = time.monotonic() + max(timeout_s, 0)
    with task_events_listen(task_id=task.pk) as events:
        task.refresh_from_db()  # subscribed now: anything that happened before is in the row
        seen = (task.status, task.status_message)
        while not task.is_terminal:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (stop is not None and stop()):
                break
            event = events.next(timeout=min(remaining, FALLBACK_POLL_S))
            if event is not None and event.get("type") == "progress":
                if on_progress is not None:
                    on_progress(event)
                continue
            task.refresh_from_db()
            if (task.status, task.status_message) != seen:
                seen = (task.status, task.status_message)
                if on_status is not None:
                    on_status(task)
    return task


def task_as_dict(task: ToolTask) -> dict:
    """The task in MCP's shape (camelCase; ttl and pollInterval in milliseconds)."""
    data = {
        "taskId": task.pk,
        "status": task.status,
        "createdAt": task.created_at.isoformat(),
        "lastUpdatedAt": (task.updated_at or task.created_at).isoformat(),
        "ttl": task.ttl_s * 1000,
        "pollInterval": task.poll_interval_ms,
    }
    if task.status_message or task.error_message:
        data["statusMessage"] = task.status_message or task.error_message
    return data


def tasks_cleanup(*, now=None) -> dict:
    """Periodic job: delete expired tasks, re-enqueue lost ones, fail ones whose worker died.

    Returns counts: {"deleted": n, "requeued": n, "lost": n}.
    """
    now = now or timezone.now()
    deleted, _ = ToolTask.objects.filter(expires_at__lt=now, status__in=TERMINAL).delete()
    # Past expiry and never started: nobody is waiting for it any more.
    stale_expired, _ = ToolTask.objects.filter(expires_at__lt=now, status=ToolTask.Status.WORKING,
                                               started_at__isnull=True).delete()
    requeued = 0
    unstarted = ToolTask.objects.filter(status=ToolTask.Status.WORKING, started_at__isnull=True,
                                        created_at__lt=now - timedelta(seconds=STALE_UNSTARTED_S))
    for pk in unstarted.values_list("pk", flat=True)[:1000]:
        try:
            _enqueue(task_id=pk)
        except Exception as exc:
            logger.warning("Cleanup could not enqueue task %s (%s); will try next time.", pk, exc)
            break
        requeued += 1
    lost = 0
    running = ToolTask.objects.filter(status=ToolTask.Status.WORKING, started_at__isnull=False)
    for pk in running.values_list("pk", flat=True)[:1000]:
        if _not_claimed(pk).status == ToolTask.Status.FAILED:
            lost += 1
    return {"deleted": deleted + stale_expired, "requeued": requeued, "lost": lost}
