"""Create (or bring up to date) the Postgres role the sql_query tools run as.

The role may log in, owns nothing, may only SELECT the tables listed in
``MCP_SQL_READONLY_TABLES``, and every one of its sessions starts read-only with a
statement timeout. Running this again changes nothing that is already right, so
``make run``, CI and the test session all call it. Roles are per cluster; grants
are per database, so it must run against each database the tools read (the test
database included).
"""
import logging
import time

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from psycopg import sql

logger = logging.getLogger("mcp_tools.readonly_role")

FIX_COMMAND = "python manage.py setup_readonly_role"


def readonly_role_name() -> str:
    return settings.DATABASES[settings.MCP_SQL_READONLY_ALIAS].get("USER") or ""


def readonly_role_missing_message(role: str) -> str:
    """What a person reads when the role is missing: what, and the command that fixes it."""
    return (f"The read-only database role '{role}' that sql_query tools run as does not exist. "
            f"Run `{FIX_COMMAND}` (part of `manage.py release`; `manage.py migrate` does it too when its "
            "database user may create roles) as a database user allowed to create roles.")


def readonly_role_problem(*, using: str = "default") -> str | None:
    """The missing-role message when the read-only role is absent from ``using``'s cluster, else None.

    Only answers for Postgres when the read-only alias reaches the same server as ``using`` (a separate
    MCP_SQL_READONLY_URL is the operator's own business). Raises DatabaseError when ``using`` is down.
    """
    connection = connections[using]
    target = settings.DATABASES[settings.MCP_SQL_READONLY_ALIAS]
    if connection.vendor != "postgresql" or not _same_server(connection.settings_dict, target):
        return None
    role = readonly_role_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            return readonly_role_missing_message(role)
    return None


def _same_server(a: dict, b: dict) -> bool:
    return (a.get("HOST") or "", str(a.get("PORT") or "")) == (b.get("HOST") or "", str(b.get("PORT") or ""))


def readonly_role_setup(*, using: str = "default", readonly_alias: str | None = None,
                        tables: list[str] | None = None, attempts: int = 5) -> str | None:
    """Create the read-only role and its grants in ``using``'s database; return its name (None on SQLite)."""
    readonly_alias = readonly_alias or settings.MCP_SQL_READONLY_ALIAS
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    target = settings.DATABASES[readonly_alias]
    role, password = target["USER"], target.get("PASSWORD") or ""
    tables = list(settings.MCP_SQL_READONLY_TABLES if tables is None else tables)
    for attempt in range(attempts):
        try:
            _apply(connection, role=role, password=password, tables=tables)
            return role
        except DatabaseError as exc:
            # Two processes creating the cluster-wide role at once: one loses the race; try again.
            if attempt == attempts - 1:
                raise
            logger.info("Retrying read-only role setup after: %s", exc)
            time.sleep(0.2 * (attempt + 1))
    return role


def _apply(connection, *, role: str, password: str, tables: list[str]) -> None:
    role_id = sql.Identifier(role)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        raw = connection.connection
        database = connection.settings_dict["NAME"]
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} NOLOGIN; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$").format(role_id)
                .as_string(raw))
        statements = [
            sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                    "NOBYPASSRLS CONNECTION LIMIT 50").format(role_id),
            (sql.SQL("ALTER ROLE {} PASSWORD {}").format(role_id, sql.Literal(password)) if password
             else sql.SQL("ALTER ROLE {} PASSWORD NULL").format(role_id)),
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role_id),
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                role_id, sql.Literal(str(settings.MCP_SQL_STATEMENT_TIMEOUT_MS))),
            sql.SQL("ALTER ROLE {} SET idle_in_transaction_session_timeout = '60s'").format(role_id),
            sql.SQL("ALTER ROLE {} SET search_path = public").format(role_id),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role_id),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role_id),
            # Start from nothing on every table, then grant SELECT on the listed ones only.
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role_id),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(role_id),
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(role_id),
        ]
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
                       [tables])
        existing = {row[0] for row in cursor.fetchall()}
        missing = sorted(set(tables) - existing)
        if missing:
            logger.warning("Read-only role: table(s) %s do not exist (yet); not granted.", ", ".join(missing))
        for table in sorted(existing):
            statements.append(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(
                sql.Identifier("public", table), role_id))
        for statement in statements:
            cursor.execute(statement.as_string(raw))
