"""Read-only SQL over an allow-list of tables.

Two modes: ``query_argument`` lets the caller write one SELECT (checked with
sqlglot against the allowed tables and a deny-list of functions);
``fixed`` runs an admin-written parameterised query, so the caller sends no
SQL at all. On Postgres every query runs in a READ ONLY transaction with a
statement timeout; rows are capped.
"""
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections, transaction
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..exceptions import ToolError, ToolTimeout
from .base import HandlerKind, register

DENIED_FUNCTIONS = {
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_read_file", "pg_read_binary_file", "pg_ls_dir",
    "pg_stat_file", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    "dblink", "dblink_exec", "dblink_connect", "set_config", "current_setting", "lo_import", "lo_export",
    "lo_get", "lo_put", "lo_from_bytea", "lo_open", "lo_create", "lo_unlink", "query_to_xml",
    "pg_advisory_lock", "pg_notify", "txid_current", "nextval", "setval", "copy", "load_extension",
    "randomblob", "zeroblob", "sleep", "benchmark",
}
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command,
                exp.Merge, exp.Into, exp.TruncateTable, exp.Grant, exp.Copy, exp.Set, exp.Transaction,
                exp.Commit, exp.Rollback, exp.Use, exp.Pragma, exp.LoadData)


def _dialect(alias: str) -> str:
    return {"postgresql": "postgres", "sqlite": "sqlite"}.get(connections[alias].vendor, "postgres")


def sql_problems(sql: str, *, allowed_tables: list[str], dialect: str) -> list[str]:
    """Why ``sql`` is not a single read-only SELECT over ``allowed_tables``."""
    if not isinstance(sql, str) or not sql.strip():
        return ["The query is empty."]
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        return [f"The query could not be parsed: {str(exc).splitlines()[0]}"]
    if len(statements) != 1:
        return ["Send exactly one statement (no ';' chaining)."]
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        return ["Only SELECT queries are allowed."]
    problems = []
    for node in tree.walk():
        if isinstance(node, _WRITE_NODES):
            problems.append(f"'{node.key.upper()}' is not allowed in a read-only query.")
        elif isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname in DENIED_FUNCTIONS or fname.startswith(("pg_", "lo_", "dblink")):
                problems.append(f"Function '{fname}' is not allowed.")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = {t.lower() for t in allowed_tables}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name:
            problems.append("Table functions are not allowed.")
        elif table.db or table.catalog:
            problems.append(f"Schema-qualified table '{table.sql()}' is not allowed.")
        elif name not in allowed and name not in cte_names:
            problems.append(f"Table '{table.name}' is not allowed; allowed tables: {', '.join(sorted(allowed))}.")
    return sorted(set(problems))


@register
class SqlQueryKind(HandlerKind):
    name = "sql_query"
    label = "SQL query (read-only)"
    atomic = False  # manages its own read-only transaction
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["allowed_tables"],
        "properties": {
            "database": {"type": "string", "default": "default"},
            "allowed_tables": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "query": {"type": "string", "description": "Fixed parameterised query, using %(argument)s."},
            "query_argument": {"type": "string", "default": "query"},
            "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
        },
    }

    def check_config(self, config):
        alias = config.get("database", "default")
        if alias not in connections.databases:
            return [f"Unknown database alias '{alias}'."]
        if "query" in config:
            return [f"Fixed query: {p}" for p in sql_problems(
                config["query"], allowed_tables=config["allowed_tables"], dialect=_dialect(alias))]
        return []

    def run(self, arguments, config, context):
        alias = config.get("database", "default")
        max_rows = int(config.get("max_rows", 100))
        if "query" in config:
            sql, params = config["query"], arguments
        else:
            sql = arguments.get(config.get("query_argument", "query"), "")
            problems = sql_problems(sql, allowed_tables=config["allowed_tables"], dialect=_dialect(alias))
            if problems:
                raise ToolError("Query refused: " + " ".join(problems))
            params = None
        connection = connections[alias]
        try:
            with transaction.atomic(using=alias):
                with connection.cursor() as cursor:
                    if connection.vendor == "postgresql":
                        cursor.execute("SET TRANSACTION READ ONLY")
                        cursor.execute("SELECT set_config('statement_timeout', %s, true)",
                                       [str(int(context.timeout_s * 1000))])
                    cursor.execute(sql, params)
                    columns = [c[0] for c in cursor.description or []]
                    rows = cursor.fetchmany(max_rows + 1)
        except DatabaseError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "statement timeout" in message or "canceling statement" in message:
                raise ToolTimeout(f"The query ran longer than {context.timeout_s:g}s and was cancelled.") from None
            raise ToolError(f"The database refused the query: {message}") from None
        truncated = len(rows) > max_rows
        records = [dict(zip(columns, row)) for row in rows[:max_rows]]
        # Dates and decimals become JSON strings, as clients will see them.
        records = json.loads(json.dumps(records, cls=DjangoJSONEncoder))
        return {"columns": columns, "rows": records, "row_count": len(records), "truncated": truncated}
