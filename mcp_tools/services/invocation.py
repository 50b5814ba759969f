"""The one invocation pipeline every caller of a tool goes through.

find the tool -> check the caller may use it -> (rate limit) -> validate the
arguments -> run it (or enqueue it) -> validate the result -> audit -> outcome.
Nothing else checks permissions, limits or schemas.
"""
from contextlib import nullcontext
from dataclasses import dataclass, field
import logging
import time
from typing import Any, Callable

from django.conf import settings
from django.db import transaction

from ..exceptions import (
    InvalidArguments,
    InvocationError,
    NotConfirmed,
    NotPermitted,
    RateLimited,
    ToolDisabled,
    ToolError,
    UnknownTool,
)
from ..kinds.base import InvocationContext, get_kind
from ..models import TOOL_NAME_VALIDATOR, Tool
from ..request_context import get_request_id
from ..observe import invocation_observe
from .argument_checks import arguments_normalised, has_nul
from .audit import audit_arguments_prepare, audit_record, without_token_values
from .connections import connection_refusal_record
from .lookup_cache import TOOLS, cached_lookup
from .ratelimit import rate_limit_check
from .schemas import instance_problems
from .principals import Caller  # noqa: F401  (re-exported: transports import it from here)

logger = logging.getLogger("mcp_tools.invocation")
TOOL_NAME_PATTERN = TOOL_NAME_VALIDATOR.regex


@dataclass
class Invocation:
    outcome: str
    result: Any = None
    error_code: str = ""
    message: str = ""
    retry_after_s: int | None = None
    task_id: str = ""
    audit_id: int | None = None
    duration_ms: float = 0.0
    tool: Tool | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def tool_lookup(name: Any) -> Tool | None:
    """The tool row by name (enabled or not) from the per-process cache, or None."""
    # A name outside the allowed pattern cannot exist: answer without a query (and never send NUL bytes).
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.fullmatch(name):
        return None
    return cached_lookup(kind=TOOLS, key=name, load=lambda: Tool.objects.filter(name=name).first())


def tool_find(*, name: str, allow_disabled: bool = False) -> Tool:
    """The tool called ``name``; raises UnknownTool, or ToolDisabled unless ``allow_disabled``."""
    if not isinstance(name, str) or not name:
        raise InvalidArguments("Give the tool's name as a non-empty string.")
    tool = tool_lookup(name)
    if tool is None:
        raise UnknownTool(f"Unknown tool '{name[:128]}'. List the available tools with tools/list or GET /mcp/v1/tools.")
    if not tool.enabled and not allow_disabled:
        raise ToolDisabled(f"Tool '{name}' is disabled by an administrator.")
    return tool


def tool_invoke(*, name: str, arguments: Any, caller: Caller, request_id: str | None = None,
                report_progress: Callable | None = None, as_task: bool = False,
                task_ttl_s: int | None = None, progress_token: Any = None,
                task_session_key: str = "", allow_disabled: bool = False) -> Invocation:
    """Run a tool, or for an async tool (or ``as_task``) queue it: outcome 'queued' with a task_id.

    ``allow_disabled`` lets an administrator try a tool before enabling it (the admin's "Try it");
    every other check still applies.

    ``progress_token`` and ``task_session_key`` are kept on a queued task, so the worker's
    progress can be relayed with that token to that session.
    """
    request_id = request_id or get_request_id()
    started = time.perf_counter()
    tool = None
    if arguments is None:  # before anything can fail: the audit row below stores the arguments (NOT NULL)
        arguments = {}
    try:
        # Token-shaped text (an API or OAuth token an agent was led to paste) never reaches a tool, its
        # validation messages or the audit row: the tool sees [REDACTED] in its place (docs/security-input-and-audit.md).
        arguments = without_token_values(arguments)
        tool = tool_find(name=name, allow_disabled=allow_disabled)
        if not caller.may_use(tool):
            scope = caller.scope_needed(tool)
            raise NotPermitted(f"This token may not call tool '{tool.name}'. " + (
                f"Request an access token with scope '{scope}'." if scope
                else "Ask an administrator to grant it."))
        rate_limit_check(tool=tool, caller=caller)
        if not isinstance(arguments, dict):
            raise InvalidArguments("Tool arguments must be a JSON object.")
        problems = instance_problems(tool.input_schema, arguments)
        if problems:
            raise InvalidArguments(f"Invalid arguments for '{tool.name}': " + "; ".join(problems))
        if has_nul(arguments):
            raise InvalidArguments("Text in the arguments may not contain NUL characters (\\u0000).")
        arguments = arguments_normalised(tool.input_schema, arguments)
        if caller.confirmation and caller.confirmation != "accept":
            raise NotConfirmed(f"The user did not confirm the call to '{tool.name}' ({caller.confirmation}); "
                               "nothing was run.")
        if tool.requires_confirmation and caller.confirmation != "accept":
            # Only a transport that asked a person (MCP elicitation) may run these; REST cannot ask anyone.
            raise NotConfirmed(f"Tool '{tool.name}' needs a person to confirm every call, and this client cannot "
                               "ask one. Call it over MCP (/mcp) from a client that supports elicitation; "
                               "nothing was run.")
        if tool.execution == Tool.Execution.ASYNC or as_task:
            from .tasks import task_create

            return task_create(tool=tool, arguments=arguments, caller=caller, request_id=request_id,
                               started=started, ttl_s=task_ttl_s, progress_token=progress_token,
                               session_key=task_session_key)
        return tool_execute(tool=tool, arguments=arguments, caller=caller, request_id=request_id,
                            started=started, report_progress=report_progress)
    except InvocationError as exc:
        failure = Invocation(outcome=exc.outcome, error_code=exc.code, message=exc.message, tool=tool,
                             retry_after_s=getattr(exc, "retry_after_s", None))
        _note_refusal(exc, tool, caller)
    except Exception:
        logger.exception("Tool %r failed unexpectedly (request %s)", name, request_id)
        failure = Invocation(
            outcome="internal_error", error_code="internal_error", tool=tool,
            message=f"Internal error while running the tool. Quote request id {request_id} to support.",
        )
    failure.duration_ms = (time.perf_counter() - started) * 1000
    event = audit_record(
        tool=tool, tool_name=tool.name if tool else str(name)[:128], caller=caller, outcome=failure.outcome,
        arguments=arguments, error_code=failure.error_code, error_message=failure.message,
        duration_ms=failure.duration_ms, request_id=request_id,
    )
    failure.audit_id = event.pk
    invocation_observe(event)
    return failure


def _note_refusal(exc: InvocationError, tool: Tool | None, caller: Caller) -> None:
    """Connections page: a rate limit, or an OAuth token without the tool's scope, stopped the call."""
    if isinstance(exc, RateLimited):
        reason = "rate_limited"
    elif isinstance(exc, NotPermitted) and tool is not None and caller.scope_needed(tool):
        reason = "oauth_scope"
    else:
        return
    connection_refusal_record(reason=reason, transport=caller.transport, client_ip=caller.client_ip,
                              token_prefix=caller.label, detail=exc.message,
                              http_status=429 if reason == "rate_limited" else 403)


def tool_execute(*, tool: Tool, arguments: dict, caller: Caller, request_id: str, started: float,
                 report_progress: Callable | None = None, task_id: str = "",
                 on_result: Callable[[Any], None] | None = None) -> Invocation:
    """The run step shared by the request path and the Celery worker (async tools).

    Runs the kind, checks its output, calls ``on_result(result)`` (the worker stores
    the task's result there) and writes the 'ok' audit event, all in one transaction
    for atomic kinds. Raises InvocationError (or anything unexpected) on failure.
    """
    kind = get_kind(tool.kind)
    if kind is None:
        raise ToolError(f"Tool '{tool.name}' is misconfigured (unknown handler kind '{tool.kind}'). "
                        "Ask an administrator to fix it.")
    context = InvocationContext(
        tool_name=tool.name,
        request_id=request_id,
        timeout_s=float(tool.timeout_s or settings.MCP_DEFAULT_TOOL_TIMEOUT_S),
        token_id=caller.api_token.pk if caller.api_token else None,
        token_prefix=caller.label,
        client_ip=caller.client_ip,
        transport=caller.transport,
        **({"report_progress": report_progress} if report_progress else {}),
    )
    # What the audit row stores is prepared before the tool runs: no tool runs whose row could not be
    # written because of what the client sent (the prepared copy is storable by construction).
    audited = audit_arguments_prepare(arguments=arguments, sensitive_fields=tool.sensitive_fields)
    if not audited.complete:
        raise InvalidArguments(f"The arguments for '{tool.name}' cannot be recorded in the audit log; "
                               "nothing was run.")
    # Atomic kinds write their rows and the audit event in one transaction:
    # either the ticket and its audit row exist, or neither does.
    with transaction.atomic() if kind.atomic else nullcontext():
        result = kind.run(arguments, tool.config, context)
        if tool.output_schema:
            problems = instance_problems(tool.output_schema, result)
            if problems:
                logger.error("Tool %s returned a result outside its output schema: %s", tool.name, problems)
                raise _InvalidOutput(f"Tool '{tool.name}' returned a result that does not match its output "
                                     "schema; an administrator has to fix the tool.")
        if on_result is not None:
            on_result(result)
        duration_ms = (time.perf_counter() - started) * 1000
        event = audit_record(tool=tool, tool_name=tool.name, caller=caller, outcome="ok", arguments=audited,
                             duration_ms=duration_ms, request_id=request_id, task_id=task_id)
    invocation_observe(event)
    return Invocation(outcome="ok", result=result, audit_id=event.pk, duration_ms=duration_ms, tool=tool)


class _InvalidOutput(ToolError):
    code = "invalid_output"
