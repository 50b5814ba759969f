"""Write audit events, with secrets redacted from what is stored.

Whatever a client sent, the row can be written: every stored value goes through :func:`redact`,
which yields only what Postgres text and jsonb hold, without recursion.
"""
from dataclasses import dataclass
import json
import math
import re
from typing import Any

from django.db import connections, router, transaction
from django.db.models.signals import post_save, pre_save

from ..models import AuditEvent
from ..token_shapes import TOKEN_VALUE, token_hint_in

REDACTED = "[REDACTED]"
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|auth(orization)?|credential|private[_-]?key|"
    r"cookie|session|ssn|card[_-]?number|cvv|iban",
    re.IGNORECASE,
)
# Arguments larger than this are summarised, not stored whole.
MAX_STORED_ARGUMENT_BYTES = 16_384


_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
# Nesting kept in a stored copy; deeper parts are summarised (no client-controlled recursion downstream).
MAX_STORED_DEPTH = 64
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def redact_token_values(text: str) -> str:
    """``text`` with every token-shaped substring (API or OAuth token) replaced by [REDACTED]."""
    return TOKEN_VALUE.sub(REDACTED, text) if token_hint_in(text) else text


def has_token_value(value) -> bool:
    """True if any string or member name in ``value`` holds a token-shaped substring (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if token_hint_in(item) and TOKEN_VALUE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def without_token_values(value):
    """``value`` itself when it holds no token-shaped text, else a copy with each one [REDACTED]."""
    if not has_token_value(value):
        return value
    return _copy(value, redact_token_values, lambda scalar: scalar, max_depth=None)


def redact(value, extra_names: frozenset[str] = frozenset()):
    """A copy of ``value`` that Postgres ``jsonb`` can always store, with secrets taken out.

    Fields with a secret-looking or admin-marked name become [REDACTED]; token-shaped text anywhere
    is redacted by value; NUL and unpaired surrogates become U+FFFD; non-finite floats, integers
    beyond 64 bits and other non-JSON values become text; nesting beyond MAX_STORED_DEPTH is
    summarised. Iterative: no recursion, whatever the depth of ``value``.
    """
    return _copy(value, _storable_text, _storable_scalar, extra_names=extra_names, redact_names=True,
                 max_depth=MAX_STORED_DEPTH)


def _copy(value, text, scalar, *, max_depth: int | None, extra_names: frozenset[str] = frozenset(),
          redact_names: bool = False):
    """A copy of ``value`` mapping strings and member names through ``text`` and other leaves through
    ``scalar``; containers deeper than ``max_depth`` are summarised. Iterative (an explicit stack)."""
    root: list = [None]
    stack: list[tuple] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)) and max_depth is not None and depth >= max_depth:
            parent[slot] = "[nested too deep]"
        elif isinstance(item, dict):
            copy: dict = {}
            parent[slot] = copy
            for key, child in item.items():
                name = text(key if isinstance(key, str) else str(key))
                if redact_names and (SECRET_NAME.search(name) or key in extra_names):
                    copy[name] = REDACTED
                else:
                    copy[name] = None
                    stack.append((child, copy, name, depth + 1))
        elif isinstance(item, (list, tuple)):
            items = [None] * len(item)
            parent[slot] = items
            stack.extend((child, items, i, depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = text(item)
        else:
            parent[slot] = scalar(item)
    return root[0]


def _storable_text(value: str) -> str:
    """Postgres text and jsonb hold neither NUL nor unpaired surrogates: U+FFFD instead; tokens redacted."""
    if _UNSTORABLE_TEXT.search(value):
        value = _UNSTORABLE_TEXT.sub("\ufffd", value)
    return redact_token_values(value)


def _storable(value):
    return _storable_text(value) if isinstance(value, str) else value


def _storable_scalar(value):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else f"[integer of {value.bit_length()} bits]"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _storable_text(str(value))


def secret_values(value, extra_names: frozenset[str] = frozenset()) -> set[str]:
    """Every string (or number) value stored under a secret-looking or admin-marked field of ``value``."""
    found = set()
    stack = [(value, False)]
    while stack:
        item, inside_secret = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, inside_secret or bool(SECRET_NAME.search(str(key)) or key in extra_names))
                         for key, child in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((child, inside_secret) for child in item)
        elif inside_secret and isinstance(item, (str, int, float)) and not isinstance(item, bool):
            text = item if isinstance(item, str) else _storable_scalar(item)
            text = str(text)
            if len(text) >= 3:  # replacing "1" or "" everywhere would garble the message, not protect anything
                found.add(text)
    return found


def redact_text(text: str, arguments, sensitive_fields=()) -> str:
    """``text`` (an error message) without any secret value taken from ``arguments``, nor any token."""
    for secret in sorted(secret_values(arguments, frozenset(sensitive_fields or ())), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact_token_values(text)


@dataclass(frozen=True)
class AuditArguments:
    """What an audit row stores of a call's arguments, prepared (and proven storable) before the tool runs.

    ``stored``: the redacted, storable copy (or a summary when the payload is large); ``size``: the
    payload's size in bytes; ``secrets``: the values to take out of error messages; ``complete``:
    False when no storable copy could be made (``stored`` is then a placeholder and the tool must not run).
    """

    stored: Any
    size: int
    secrets: tuple[str, ...]
    complete: bool = True


def audit_arguments_prepare(*, arguments, sensitive_fields=()) -> AuditArguments:
    """The stored form of ``arguments``; never fails on what a client sent.

    The copy is serialised here as the jsonb column will be (``allow_nan=False``). Should that ever
    fail, the result is a placeholder with ``complete=False``: the row can still be written, and the
    pipeline refuses to run the tool (a call whose arguments could not be stored is refused before
    its tool runs, not after).
    """
    names = frozenset(sensitive_fields or ())
    try:
        cleaned = redact(arguments, names)
        encoded = json.dumps(cleaned, allow_nan=False, ensure_ascii=False)  # the proof: jsonb takes this
    except (TypeError, ValueError, RecursionError):  # by construction unreachable; never lose the row
        return AuditArguments(stored={"_unstorable": True}, size=0, secrets=(), complete=False)
    try:  # the size of what the client sent, as before redaction
        size = len(json.dumps(arguments, default=str).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError, RecursionError):
        size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > MAX_STORED_ARGUMENT_BYTES:
        keys = sorted(cleaned) if isinstance(cleaned, dict) else []
        cleaned = {"_truncated": True, "_keys": keys[:50]}
    secrets = tuple(sorted(secret_values(arguments, names), key=len, reverse=True))
    return AuditArguments(stored=cleaned, size=size, secrets=secrets)


def audit_record(*, tool, tool_name: str, caller, outcome: str, arguments, error_code: str = "",
                 error_message: str = "", duration_ms: float, request_id: str, task_id: str = "",
                 method: str = "tools/call") -> AuditEvent:
    sensitive = getattr(tool, "sensitive_fields", ())
    prepared = arguments if isinstance(arguments, AuditArguments) else audit_arguments_prepare(
        arguments=arguments, sensitive_fields=sensitive)
    message = error_message
    for secret in prepared.secrets:
        message = message.replace(secret, REDACTED)
    event = AuditEvent(
        token=caller.api_token,
        token_prefix=caller.label,
        user=caller.acting_user,
        tool=tool,
        tool_name=_storable(tool_name)[:128],
        transport=caller.transport,
        method=method,
        arguments=prepared.stored,
        argument_bytes=prepared.size,
        outcome=outcome,
        error_code=error_code,
        # A validation message may quote the value it refused ("'hunter2' is too short").
        error_message=_storable_text(message)[:2000],
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
