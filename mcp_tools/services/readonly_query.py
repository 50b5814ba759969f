"""The read-only database connection that query tools (sql_query, model query) run on: one way to open it,
bound a transaction on it, turn its errors into tool outcomes, and leave it clean.

The connection alias is ``settings.MCP_SQL_READONLY_ALIAS``: on Postgres the read-only role made by
``manage.py setup_readonly_role``; on the embedded SQLite default the file opened ``mode=ro``.
"""
from __future__ import annotations

from contextlib import contextmanager
import sqlite3
import time
from typing import Iterator

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from ..exceptions import ServiceUnavailable, ToolError, ToolTimeout
from .readonly_role import FIX_COMMAND, readonly_role_missing_message

# Postgres' query_canceled: the statement_timeout fired.
QUERY_TIMEOUT_SQLSTATE = "57014"


def readonly_connect(alias: str):
    """The read-only connection, open. Raises ServiceUnavailable saying what is wrong and what fixes it."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        role = connection.settings_dict.get("USER") or ""
        if role and f'role "{role}" does not exist' in str(exc):
            raise ServiceUnavailable(readonly_role_missing_message(role)) from None
        raise ServiceUnavailable("The read-only query database is unreachable; an administrator should check "
                                 f"that the database is up and that `{FIX_COMMAND}` has been run.") from None
    return connection


def readonly_timeout_ms(timeout_s: float) -> int:
    """The statement budget in milliseconds: the tool's timeout, capped by MCP_SQL_STATEMENT_TIMEOUT_MS."""
    return max(1, min(int(timeout_s * 1000), settings.MCP_SQL_STATEMENT_TIMEOUT_MS))


def readonly_session_reset(connection) -> None:
    """Leave a reused (persistent) connection as it was opened, whatever the statement did.

    Timeouts are transaction-local, but SQL that no parser checked could end the transaction itself
    ("COMMIT; SET ...") and change session settings; DISCARD ALL puts every setting back to the
    connection's start-up values (read-only, role timeout). A connection that cannot be reset is closed.
    """
    if connection.vendor != "postgresql" or connection.connection is None or connection.in_atomic_block:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("DISCARD ALL")
    except DatabaseError:
        connection.close()


def readonly_error(exc: DatabaseError, *, timeout_ms: int) -> ToolError:
    """The tool outcome for a database error on the read-only connection: ToolTimeout or ToolError."""
    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    if getattr(exc.__cause__, "sqlstate", None) == QUERY_TIMEOUT_SQLSTATE or "interrupted" in message:
        return ToolTimeout(f"The query ran longer than {timeout_ms / 1000:g}s and was cancelled.")
    return ToolError(f"The database refused the query: {message[:500]}")


@contextmanager
def readonly_transaction(alias: str, *, timeout_ms: int) -> Iterator:
    """A READ ONLY transaction on ``alias`` that the database cancels after ``timeout_ms``; yields the connection.

    Postgres: ``SET TRANSACTION READ ONLY`` with transaction-local statement and lock timeouts.
    SQLite: a progress handler that interrupts the statement at the deadline. Database errors raised
    inside propagate (callers map them with :func:`readonly_error`); the session is reset afterwards.
    """
    connection = readonly_connect(alias)
    try:
        with transaction.atomic(using=alias):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION READ ONLY")
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [str(timeout_ms)])
                yield connection
            else:
                raw = connection.connection
                deadline = time.monotonic() + timeout_ms / 1000
                raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
                # SQLite's own bound on any one string or blob it builds (printf, replace, group_concat):
                # a value can never outgrow the result budget in this process's memory.
                previous = raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, settings.MCP_RESULT_MAX_BYTES + 1024)
                try:
                    yield connection
                finally:
                    raw.set_progress_handler(None, 0)
                    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, previous)
    finally:
        readonly_session_reset(connection)
