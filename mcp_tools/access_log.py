"""One structured log line per HTTP request (logger ``mcp_tools.access``).

Fields: request_id, method, path, status, duration_ms, client_ip, and when known
the tool called, the API token's prefix as ``key_prefix`` (never the secret; not named
"token..." because the log redaction blanks such fields) and the call's outcome.
Also counts 401 answers as authentication failures in the metrics.
"""
import contextvars
import logging
import re
import time

from .metrics import metrics_record_auth_failure

logger = logging.getLogger("mcp_tools.access")

_notes: contextvars.ContextVar[dict | None] = contextvars.ContextVar("access_notes", default=None)
# "mcp_<prefix>_<secret>": the 8-character prefix is safe to log, the secret is not.
_TOKEN_PREFIX = re.compile(r"(?:bearer\s+)?mcp_([a-z0-9]{8})_", re.IGNORECASE)


def access_note(**fields) -> None:
    """Add fields (tool_name, token_prefix, outcome) to the current request's log line."""
    notes = _notes.get()
    if notes is not None:
        notes.update({key: value for key, value in fields.items() if value})


def _claimed_prefix(request) -> str:
    for header in ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY"):
        match = _TOKEN_PREFIX.match(request.META.get(header, ""))
        if match:
            return match.group(1).lower()
    return ""


def _endpoint(request) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match and match.view_name else "") or "unresolved"


class AccessLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        notes: dict = {}
        reset = _notes.set(notes)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            _notes.reset(reset)
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            if status == 401:
                metrics_record_auth_failure(endpoint=_endpoint(request))
            logger.info(
                "%s %s %s", request.method, request.path, status,
                extra={
                    "request_id": getattr(request, "request_id", "-"),
                    "method": request.method,
                    "path": request.path,
                    "tool": notes.get("tool_name", ""),
                    "key_prefix": notes.get("token_prefix") or _claimed_prefix(request),
                    "outcome": notes.get("outcome", ""),
                    "status": status,
                    "duration_ms": duration_ms,
                    "client_ip": request.META.get("REMOTE_ADDR", ""),
                },
            )
