"""One hook the invocation pipeline calls once per audited call: metrics and the access log."""
from .access_log import access_note
from .metrics import metrics_record_invocation

UNKNOWN_TOOL_LABEL = "(unknown)"


def invocation_observe(event) -> None:
    """Record an audited tool call (an AuditEvent) in the metrics and the request's log line.

    A call naming no existing tool is counted under one label, so agents typing
    made-up names cannot grow the metrics without bound.
    """
    tool_name = event.tool_name if event.tool_id is not None else UNKNOWN_TOOL_LABEL
    metrics_record_invocation(tool_name=tool_name, outcome=event.outcome, duration_ms=event.duration_ms)
    access_note(tool_name=event.tool_name, token_prefix=event.token_prefix, outcome=event.outcome)
