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
    NotPermitted,
    ToolDisabled,
    ToolError,
    UnknownTool,
)
from ..kinds.base import InvocationContext, get_kind
from ..models import ApiToken, Tool
from ..request_context import get_request_id
from .audit import audit_record
from .schemas import instance_problems
from .tokens import token_may_use

logger = logging.getLogger("mcp_tools.invocation")


@dataclass(frozen=True)
class Caller:
    """Who is calling and through which door."""

    token: ApiToken | None = None
    user: Any = None  # a staff user, for calls made from the admin
    client_ip: str | None = None
    transport: str = "rest"
    protocol_version: str = ""

    def may_use(self, tool: Tool) -> bool:
        if self.user is not None and self.token is None:
            return bool(self.user.is_active and self.user.is_superuser)
        return token_may_use(self.token, tool)


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


def tool_find(*, name: str) -> Tool:
    if not isinstance(name, str) or not name:
        raise InvalidArguments("Give the tool's name as a non-empty string.")
    tool = Tool.objects.filter(name=name).first()
    if tool is None:
        raise UnknownTool(f"Unknown tool '{name[:128]}'. List the available tools with tools/list or GET /mcp/v1/tools.")
    if not tool.enabled:
        raise ToolDisabled(f"Tool '{name}' is disabled by an administrator.")
    return tool


def tool_invoke(*, name: str, arguments: Any, caller: Caller, request_id: str | None = None,
                report_progress: Callable | None = None) -> Invocation:
    request_id = request_id or get_request_id()
    started = time.perf_counter()
    tool = None
    try:
        tool = tool_find(name=name)
        if not caller.may_use(tool):
            raise NotPermitted(f"This token may not call tool '{tool.name}'. Ask an administrator to grant it.")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise InvalidArguments("Tool arguments must be a JSON object.")
        problems = instance_problems(tool.input_schema, arguments)
        if problems:
            raise InvalidArguments(f"Invalid arguments for '{tool.name}': " + "; ".join(problems))
        return _run(tool, arguments, caller, request_id, started, report_progress)
    except InvocationError as exc:
        failure = Invocation(outcome=exc.outcome, error_code=exc.code, message=exc.message, tool=tool,
                             retry_after_s=getattr(exc, "retry_after_s", None))
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
    return failure


def _run(tool: Tool, arguments: dict, caller: Caller, request_id: str, started: float,
         report_progress: Callable | None) -> Invocation:
    kind = get_kind(tool.kind)
    if kind is None:
        raise ToolError(f"Tool '{tool.name}' is misconfigured (unknown handler kind '{tool.kind}'). "
                        "Ask an administrator to fix it.")
    context = InvocationContext(
        tool_name=tool.name,
        request_id=request_id,
        timeout_s=float(tool.timeout_s or settings.MCP_DEFAULT_TOOL_TIMEOUT_S),
        token_id=caller.token.pk if caller.token else None,
        token_prefix=caller.token.prefix if caller.token else "",
        client_ip=caller.client_ip,
        transport=caller.transport,
        **({"report_progress": report_progress} if report_progress else {}),
    )
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
        duration_ms = (time.perf_counter() - started) * 1000
        event = audit_record(tool=tool, tool_name=tool.name, caller=caller, outcome="ok", arguments=arguments,
                             duration_ms=duration_ms, request_id=request_id)
    return Invocation(outcome="ok", result=result, audit_id=event.pk, duration_ms=duration_ms, tool=tool)


class _InvalidOutput(ToolError):
    code = "invalid_output"
