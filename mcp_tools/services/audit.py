"""Write audit events, with secrets redacted from what is stored."""
import json
import re

from ..models import AuditEvent

REDACTED = "[REDACTED]"
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|auth(orization)?|credential|private[_-]?key|"
    r"cookie|session|ssn|card[_-]?number|cvv|iban",
    re.IGNORECASE,
)
# Arguments larger than this are summarised, not stored whole.
MAX_STORED_ARGUMENT_BYTES = 16_384


def redact(value, extra_names: frozenset[str] = frozenset()):
    """Copy of ``value`` with every secret-looking or admin-marked field replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if (SECRET_NAME.search(str(key)) or key in extra_names) else redact(item, extra_names)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, extra_names) for item in value]
    return value


def audit_arguments(arguments, sensitive_fields=()) -> tuple[object, int]:
    """Redacted arguments to store and the size of the original payload in bytes."""
    try:
        size = len(json.dumps(arguments, default=str).encode())
    except (TypeError, ValueError):
        size = 0
    cleaned = redact(arguments, frozenset(sensitive_fields or ()))
    if size > MAX_STORED_ARGUMENT_BYTES:
        keys = sorted(cleaned) if isinstance(cleaned, dict) else []
        cleaned = {"_truncated": True, "_keys": keys[:50]}
    return cleaned, size


def audit_record(*, tool, tool_name: str, caller, outcome: str, arguments, error_code: str = "",
                 error_message: str = "", duration_ms: float, request_id: str, task_id: str = "",
                 method: str = "tools/call") -> AuditEvent:
    stored, size = audit_arguments(arguments, getattr(tool, "sensitive_fields", ()))
    token = caller.token
    return AuditEvent.objects.create(
        token=token,
        token_prefix=token.prefix if token else "",
        user=caller.user,
        tool=tool,
        tool_name=tool_name[:128],
        transport=caller.transport,
        method=method,
        arguments=stored,
        argument_bytes=size,
        outcome=outcome,
        error_code=error_code,
        error_message=error_message[:2000],
        duration_ms=round(duration_ms, 3),
        request_id=request_id,
        client_ip=caller.client_ip,
        protocol_version=caller.protocol_version,
        task_id=task_id,
    )
