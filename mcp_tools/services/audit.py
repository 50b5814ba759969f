"""Write audit events, with secrets redacted from what is stored."""
import json
import re

from django.db import connections, router, transaction
from django.db.models.signals import post_save, pre_save

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
    event = AuditEvent(
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
    audit_insert(event)
    return event


def audit_insert(event: AuditEvent) -> None:
    """Store a new event: one ``INSERT ... RETURNING id``, exactly the row ``event.save()`` would write.

    Every tool call writes one, so the ORM's per-save work (queryset, compiler, SQL generation) showed
    in the profile: the statement is built once per process and only the values are prepared per call,
    by each field's own ``pre_save``/``get_db_prep_save``, as ``save()`` does. Falls back to ``save()``
    when model signals listen to AuditEvent or the database cannot return the new id.
    """
    connection = connections[router.db_for_write(AuditEvent, instance=event)]
    if (pre_save.has_listeners(AuditEvent) or post_save.has_listeners(AuditEvent)
            or not connection.features.can_return_columns_from_insert):
        event.save(force_insert=True)
        return
    fields, sql = _insert_statement(connection)
    values = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    with transaction.mark_for_rollback_on_error(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(sql, values)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias


_statements: dict[str, tuple[list, str]] = {}


def _insert_statement(connection) -> tuple[list, str]:
    cached = _statements.get(connection.alias)
    if cached is None:
        meta = AuditEvent._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.pk]
        quote = connection.ops.quote_name
        sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}")
        cached = _statements[connection.alias] = (fields, sql)
    return cached
