"""Domain exceptions of the invocation pipeline.

Each carries the audit outcome and a stable error code; transports turn them
into HTTP or JSON-RPC answers in one place each.
"""


class InvocationError(Exception):
    outcome = "internal_error"
    code = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownTool(InvocationError):
    outcome = "invalid"
    code = "unknown_tool"


class ToolDisabled(InvocationError):
    outcome = "denied"
    code = "tool_disabled"


class NotPermitted(InvocationError):
    outcome = "denied"
    code = "not_permitted"


class NotConfirmed(InvocationError):
    """The tool asks for confirmation and the user declined or cancelled."""

    outcome = "denied"
    code = "not_confirmed"


class InvalidArguments(InvocationError):
    outcome = "invalid"
    code = "invalid_arguments"


class RateLimited(InvocationError):
    outcome = "rate_limited"
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ToolError(InvocationError):
    """An expected failure the tool reports to the caller (bad query, upstream said no)."""

    outcome = "tool_error"
    code = "tool_error"


class ToolTimeout(InvocationError):
    outcome = "timeout"
    code = "timeout"


class ServiceUnavailable(InvocationError):
    """A dependency (broker, database) is down; the caller may retry later."""

    outcome = "internal_error"
    code = "unavailable"


class AuthenticationFailed(Exception):
    """A credential was missing, malformed, unknown, expired or revoked.

    ``reason`` names which, for the admin's Connections page (a key of
    ``services.connections.REASONS``); the client sees only the message.
    """

    def __init__(self, message: str, reason: str = "token_unknown"):
        super().__init__(message)
        self.reason = reason


class TaskNotFound(InvocationError):
    """No such task for this caller (another caller's task is reported the same way)."""

    outcome = "invalid"
    code = "task_not_found"


class TaskNotCancellable(InvocationError):
    """The task already finished (completed, failed or cancelled)."""

    outcome = "invalid"
    code = "task_terminal"


class CallCancelled(InvocationError):
    """The client cancelled the call while the tool ran; the tool was stopped at its next progress report."""

    outcome = "tool_error"
    code = "cancelled"


class StreamCapReached(Exception):
    """A held stream (event stream, GET stream, listen) beyond the process's or the token's cap.

    Transports answer 503 with ``Retry-After: retry_after_s``; ``scope`` is "process" or "token".
    """

    def __init__(self, message: str, *, retry_after_s: int, scope: str, kind: str):
        super().__init__(message)
        self.message, self.retry_after_s, self.scope, self.kind = message, retry_after_s, scope, kind
