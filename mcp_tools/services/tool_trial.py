"""The admin's "Try it": a tool run by a staff user through the same pipeline agents use."""
from dataclasses import dataclass
import json
from typing import Any

from ..models import AuditEvent, Tool
from ..protocol import content as c
from .invocation import Invocation, tool_invoke
from .principals import Caller


@dataclass
class Trial:
    invocation: Invocation
    call_result: dict[str, Any]  # the MCP CallToolResult an agent would have received
    audit_event: AuditEvent | None


def call_result_of(*, tool: Tool, invocation: Invocation) -> dict[str, Any]:
    """The CallToolResult (content, structuredContent, isError) of ``invocation``, as MCP clients see it."""
    if invocation.outcome == "queued":
        return c.tool_result([c.text(f"Queued as task {invocation.task_id}.")])
    if invocation.ok:
        result = invocation.result
        if tool.output_schema and isinstance(result, dict):
            return c.tool_result(structured=result)
        return c.tool_result([c.text(result if isinstance(result, str)
                                     else json.dumps(result, ensure_ascii=False, default=str))])
    message = invocation.message
    if invocation.retry_after_s:
        message = f"{message} Retry after {invocation.retry_after_s}s."
    return c.tool_error(message)


def tool_try(*, tool: Tool, arguments: Any, user, client_ip: str | None = None, confirmed: bool = False) -> Trial:
    """Run ``tool`` as ``user`` (transport "admin"), even while it is disabled; audited like any call.

    ``confirmed`` is the person's answer to the tool's confirmation question (requires_confirmation).
    Returns the invocation, the CallToolResult and the audit row it wrote.
    """
    caller = Caller(user=user, client_ip=client_ip, transport="admin", confirmation="accept" if confirmed else "")
    invocation = tool_invoke(name=tool.name, arguments=arguments, caller=caller, allow_disabled=True)
    event = AuditEvent.objects.filter(pk=invocation.audit_id).first() if invocation.audit_id else None
    return Trial(invocation=invocation, call_result=call_result_of(tool=tool, invocation=invocation),
                 audit_event=event)
