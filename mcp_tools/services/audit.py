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
            _storable(key): REDACTED if (SECRET_NAME.search(str(key)) or key in extra_names)
            else redact(item, extra_names)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, extra_names) for item in value]
    return _storable(value)


def _storable(value):
    """Postgres text and jsonb cannot hold NUL characters: store U+FFFD instead."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def secret_values(value, extra_names: frozenset[str] = frozenset(), _inside_secret: bool = False) -> set[str]:
    """Every string (or number) value stored under a secret-looking or admin-marked field of ``value``."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secret_values(item, extra_names,
                                   _inside_secret or bool(SECRET_NAME.search(str(key)) or key in extra_names))
    elif isinstance(value, list):
        for item in value:
            found |= secret_values(item, extra_names, _inside_secret)
    elif _inside_secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 3:  # replacing "1" or "" everywhere would garble the message, not protect anything
            found.add(text)
    return found


def redact_text(text: str, arguments, sensitive_fields=()) -> str:
    """``text`` (an error message) without any secret value taken from ``arguments``."""
    for secret in sorted(secret_values(arguments, frozenset(sensitive_fields or ())), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


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
    sensitive = getattr(tool, "sensitive_fields", ())
    stored, size = audit_arguments(arguments, sensitive)
    return AuditEvent.objects.create(
        token=caller.api_token,
        token_prefix=caller.label,
        user=caller.acting_user,
        tool=tool,
        tool_name=_storable(tool_name)[:128],
        transport=caller.transport,
        method=method,
        arguments=stored,
        argument_bytes=size,
        outcome=outcome,
        error_code=error_code,
        # A validation message may quote the value it refused ("'hunter2' is too short").
        error_message=_storable(redact_text(error_message, arguments, sensitive))[:2000],
        duration_ms=round(duration_ms, 3),
        request_id=request_id,
        client_ip=caller.client_ip,
        protocol_version=caller.protocol_version,
        task_id=task_id,
        confirmation=getattr(caller, "confirmation", ""),
    )
