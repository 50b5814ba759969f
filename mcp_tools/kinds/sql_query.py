"""Read-only SQL over an allow-list of tables (and optionally columns).

Two modes: ``query_argument`` lets the caller write one SELECT; ``fixed`` runs an
admin-written parameterised query, so the caller sends no SQL at all.

Three independent walls, so one miss is not a breach:

1. The parser (sqlglot): exactly one SELECT (or UNION/INTERSECT/EXCEPT of SELECTs)
   over the allowed tables and columns; no writes anywhere in the tree (CTEs
   included), no ``SELECT ... INTO``, no locking clauses, no schema-qualified or
   system tables, only functions from an allow-list, casts only to plain types.
   What runs is the SQL regenerated from the checked tree, without comments, so
   text the parser did not see cannot reach the database.
2. The connection: the ``tools_readonly`` alias, a role that may only SELECT the
   demo tables, whose sessions start read-only (SQLite: the file opened ``mode=ro``).
3. The transaction: ``READ ONLY`` with a ``statement_timeout`` (SQLite: a progress
   handler deadline), and a ``LIMIT`` wrapped around the query so at most
   ``max_rows + 1`` rows ever leave the database.
"""
import json
import re
import time

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections, transaction
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from ..exceptions import ServiceUnavailable, ToolError, ToolTimeout
from .base import HandlerKind, register

# Functions a query may call, by sqlglot's name for them (unknown functions use their own name).
# An allow-list: anything not here (pg_sleep, pg_read_file, dblink, lo_*, set_config,
# current_setting, version, nextval, query_to_xml, generate_series, ...) is refused.
ALLOWED_FUNCTIONS = frozenset({
    # aggregates
    "COUNT", "COUNT_IF", "SUM", "AVG", "MIN", "MAX", "ARRAY_AGG", "GROUP_CONCAT", "LOGICAL_AND", "LOGICAL_OR",
    "STDDEV", "STDDEV_POP", "STDDEV_SAMP", "VARIANCE", "VARIANCE_POP", "PERCENTILE_CONT", "PERCENTILE_DISC",
    # window functions
    "ROW_NUMBER", "RANK", "DENSE_RANK", "NTILE", "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "PERCENT_RANK",
    "CUME_DIST",
    # strings
    "LOWER", "UPPER", "LENGTH", "SUBSTRING", "TRIM", "CONCAT", "CONCAT_WS", "REPLACE", "LEFT", "RIGHT", "PAD",
    "STR_POSITION", "SPLIT_PART", "INITCAP", "REVERSE", "REGEXP_LIKE", "MD5",
    # numbers and logic
    "ABS", "ROUND", "CEIL", "FLOOR", "MOD", "POWER", "SQRT", "SIGN", "TRUNC", "COALESCE", "NULLIF", "GREATEST",
    "LEAST", "CASE", "IF", "CAST", "TRY_CAST", "EXISTS", "ARRAY",
    # dates
    "EXTRACT", "TIMESTAMP_TRUNC", "DATE_TRUNC", "CURRENT_DATE", "CURRENT_TIMESTAMP", "CURRENT_TIME",
    "LOCALTIMESTAMP", "DATE", "TIME_TO_STR", "STR_TO_DATE", "AGE", "DATE_PART", "MAKE_DATE",
})
# Types a value may be cast to. Object-identifier types (regclass, regproc, ...) run lookup code: refused.
ALLOWED_CAST_TYPES = frozenset({
    "INT", "BIGINT", "SMALLINT", "DECIMAL", "DOUBLE", "FLOAT", "TEXT", "VARCHAR", "CHAR", "NCHAR", "NVARCHAR",
    "DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "DATETIME", "BOOLEAN", "INTERVAL", "JSON", "JSONB", "UUID",
})
# Names of system catalogs; never readable, even if an admin lists one.
_SYSTEM_TABLE = re.compile(r"^(pg_|information_schema$|sqlite_)", re.IGNORECASE)
_FORBIDDEN_TREE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                         exp.TruncateTable, exp.Command, exp.Copy, exp.Set, exp.Transaction, exp.Commit,
                         exp.Rollback, exp.Use, exp.Pragma, exp.LoadData, exp.Grant, exp.Into, exp.Lock)
# Unicode-escape syntax (U&'..', U&"..") can spell any name past the parser; invisible and
# direction-changing characters hide what a query says from the person reading the audit trail.
_UNICODE_ESCAPE = re.compile(r"U&\s*['\"]", re.IGNORECASE)
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
QUERY_TIMEOUT_SQLSTATE = "57014"


def _dialect(alias: str) -> str:
    return {"postgresql": "postgres", "sqlite": "sqlite"}.get(connections[alias].vendor, "postgres")


def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()


def _parse_one_select(sql: str, dialect: str) -> tuple[exp.Expression | None, list[str]]:
    if not isinstance(sql, str) or not sql.strip():
        return None, ["The query is empty."]
    if _INVISIBLE.search(sql):
        return None, ["The query contains control or invisible Unicode characters."]
    if _UNICODE_ESCAPE.search(sql):
        return None, ["Unicode-escaped names or strings (U&'...') are not allowed."]
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, SqlglotError) as exc:
        return None, [f"The query could not be parsed: {str(exc).splitlines()[0][:300]}"]
    if len(statements) != 1:
        return None, ["Send exactly one statement (no ';' chaining)."]
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        return None, ["Only SELECT queries are allowed."]
    return tree, []


def _tree_problems(tree: exp.Expression, allowed_tables: list[str]) -> list[str]:
    problems = []
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_TREE_NODES):
            label = {"into": "SELECT ... INTO", "lock": "Locking clauses (FOR UPDATE/SHARE)"}.get(
                node.key, f"'{node.key.upper()}'")
            problems.append(f"{label} is not allowed in a read-only query.")
        elif isinstance(node, exp.Func):
            name = _function_name(node)
            if name not in ALLOWED_FUNCTIONS:
                problems.append(f"Function '{name.lower()}' is not allowed.")
            if isinstance(node, (exp.Cast, exp.TryCast)):
                target = node.args.get("to")
                type_name = target.this.name if isinstance(target, exp.DataType) and \
                    isinstance(target.this, exp.DataType.Type) else str(target and target.sql()).upper()
                if type_name not in ALLOWED_CAST_TYPES:
                    problems.append(f"Casting to '{type_name.lower()}' is not allowed.")
        elif isinstance(node, exp.DataType) and not isinstance(node.parent, (exp.Cast, exp.TryCast, exp.DataType)):
            problems.append("Type expressions are only allowed in casts.")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = {t.lower() for t in allowed_tables}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or not isinstance(table.this, exp.Identifier):
            problems.append("Table functions are not allowed.")
        elif table.db or table.catalog:
            problems.append(f"Schema-qualified table '{table.sql()}' is not allowed.")
        elif _SYSTEM_TABLE.match(name) and name not in cte_names:
            problems.append(f"System catalog '{table.name}' is not allowed.")
        elif name not in allowed and name not in cte_names:
            problems.append(f"Table '{table.name}' is not allowed; allowed tables: {', '.join(sorted(allowed))}.")
    return problems


def _column_problems(tree: exp.Expression, allowed_columns: dict, dialect: str, schema: dict) -> tuple[
        exp.Expression | None, list[str]]:
    """Resolve every column to its table (stars expanded) and check the restricted tables' columns."""
    restricted = {t.lower(): {c.lower() for c in cols} for t, cols in allowed_columns.items()}
    try:
        qualified = qualify(tree.copy(), schema=schema, dialect=dialect, validate_qualify_columns=True,
                            quote_identifiers=False, identify=False)
    except SqlglotError as exc:
        return None, [f"Could not resolve the query's columns: {str(exc).splitlines()[0][:300]}"]
    problems = []
    for scope in traverse_scope(qualified):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name.lower() in restricted:
                if column.name.lower() not in restricted[source.name.lower()]:
                    problems.append(f"Column '{source.name}.{column.name}' is not allowed; allowed columns of "
                                    f"{source.name}: {', '.join(sorted(restricted[source.name.lower()]))}.")
    return qualified, problems


def sql_problems(sql: str, *, allowed_tables: list[str], dialect: str, allowed_columns: dict | None = None,
                 schema: dict | None = None) -> list[str]:
    """Why ``sql`` is not a single read-only SELECT over the allowed tables and columns."""
    tree, problems = _parse_one_select(sql, dialect)
    if tree is None:
        return problems
    problems = _tree_problems(tree, allowed_tables)
    if not problems and allowed_columns:
        _, problems = _column_problems(tree, allowed_columns, dialect, schema or {})
    return sorted(set(problems))


def sql_prepare(sql: str, *, allowed_tables: list[str], dialect: str, max_rows: int,
                allowed_columns: dict | None = None, schema: dict | None = None) -> str:
    """The SQL to run for a caller's query: regenerated from the checked tree, row-capped. Raises ToolError."""
    tree, problems = _parse_one_select(sql, dialect)
    if tree is not None:
        problems = _tree_problems(tree, allowed_tables)
        if not problems and allowed_columns:
            tree, problems = _column_problems(tree, allowed_columns, dialect, schema or {})
    if problems:
        raise ToolError("Query refused: " + " ".join(sorted(set(problems))))
    capped = exp.select("*").from_(tree.subquery("mcp_result")).limit(max_rows + 1)
    return capped.sql(dialect=dialect, comments=False)


def _table_schema(alias: str, tables) -> dict:
    """{table: {column: type}} of ``tables`` as the read-only connection sees them, for column checks."""
    connection = connections[alias]
    schema = {}
    with connection.cursor() as cursor:
        for table in tables:
            try:
                description = connection.introspection.get_table_description(cursor, table)
            except DatabaseError:
                continue
            schema[table] = {column.name: "text" for column in description}
    return schema


def _session_reset(connection) -> None:
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


def sql_execute(*, alias: str, sql: str, params=None, timeout_s: float, max_rows: int) -> dict:
    """Run ``sql`` on ``alias`` in a read-only transaction with a deadline; at most ``max_rows`` rows back.

    This is the last wall: it refuses writes and long runs even for SQL no parser has checked.
    """
    connection = connections[alias]
    timeout_ms = max(1, min(int(timeout_s * 1000), settings.MCP_SQL_STATEMENT_TIMEOUT_MS))
    try:
        connection.ensure_connection()
    except DatabaseError:
        raise ServiceUnavailable("The read-only query database is unreachable or its role is missing; an "
                                 "administrator must run 'manage.py setup_readonly_role'.") from None
    try:
        with transaction.atomic(using=alias):
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET TRANSACTION READ ONLY")
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)])
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [str(timeout_ms)])
                elif connection.vendor == "sqlite":
                    deadline = time.monotonic() + timeout_ms / 1000
                    connection.connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
                try:
                    cursor.execute(sql, params)
                    columns = [c[0] for c in cursor.description or []]
                    rows = cursor.fetchmany(max_rows + 1)
                finally:
                    if connection.vendor == "sqlite":
                        connection.connection.set_progress_handler(None, 0)
    except DatabaseError as exc:
        cause = exc.__cause__
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        if getattr(cause, "sqlstate", None) == QUERY_TIMEOUT_SQLSTATE or "interrupted" in message:
            raise ToolTimeout(f"The query ran longer than {timeout_ms / 1000:g}s and was cancelled.") from None
        raise ToolError(f"The database refused the query: {message[:500]}") from None
    finally:
        _session_reset(connection)
    truncated = len(rows) > max_rows
    records = [dict(zip(columns, row)) for row in rows[:max_rows]]
    # Dates and decimals become JSON strings, as clients will see them.
    records = json.loads(json.dumps(records, cls=DjangoJSONEncoder))
    return {"columns": columns, "rows": records, "row_count": len(records), "truncated": truncated}


def _alias(config: dict) -> str:
    alias = config.get("database") or settings.MCP_SQL_READONLY_ALIAS
    # The application's own connection can write: tools never use it.
    return settings.MCP_SQL_READONLY_ALIAS if alias == "default" else alias


@register
class SqlQueryKind(HandlerKind):
    name = "sql_query"
    label = "SQL query (read-only)"
    atomic = False  # manages its own read-only transaction on its own connection
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["allowed_tables"],
        "properties": {
            "database": {"type": "string", "title": "Database alias",
                         "description": "Database alias; leave blank for the read-only one."},
            "allowed_tables": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                               "title": "Allowed tables",
                               "description": "Tables the query may read; nothing else is readable.",
                               "examples": [["orders", "users"]]},
            "allowed_columns": {
                "type": "object", "title": "Allowed columns",
                "description": 'Optional {"table": ["column", ...]}: only these columns of that table may be read.',
                "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
            "query": {"type": "string", "title": "Fixed query", "x-widget": "textarea",
                      "description": "A SELECT the tool always runs; write each argument as %(name)s, a name from "
                                     "the input schema. Leave blank to let the caller send the SQL instead.",
                      "examples": ["SELECT id, status, total FROM orders WHERE id = %(order_id)s"]},
            "query_argument": {"type": "string", "default": "query", "title": "Query argument",
                               "description": "Without a fixed query: the argument that carries the caller's "
                                              "SELECT (declare it in the input schema as a string)."},
            "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100, "title": "Max rows",
                         "description": "Rows returned at most; the result says when more matched."},
        },
    }

    def check_config(self, config):
        alias = config.get("database") or settings.MCP_SQL_READONLY_ALIAS
        if alias not in connections.databases:
            return [f"Unknown database alias '{alias}'."]
        if alias == "default":
            return [f"sql_query tools read through the read-only alias '{settings.MCP_SQL_READONLY_ALIAS}'; "
                    "the application's own connection can write."]
        problems = [f"System catalog '{t}' may not be listed." for t in config["allowed_tables"]
                    if _SYSTEM_TABLE.match(t)]
        allowed = {t.lower() for t in config["allowed_tables"]}
        problems += [f"allowed_columns names table '{t}', which is not in allowed_tables."
                     for t in config.get("allowed_columns", {}) if t.lower() not in allowed]
        if "query" in config and not problems:
            problems += [f"Fixed query: {p}" for p in sql_problems(
                config["query"], allowed_tables=config["allowed_tables"], dialect=_dialect(alias))]
        return problems

    def run(self, arguments, config, context):
        alias = _alias(config)
        max_rows = int(config.get("max_rows", 100))
        if "query" in config:
            fixed = config["query"].strip().rstrip(";")
            sql, params = f"SELECT * FROM ({fixed}) AS mcp_result LIMIT {max_rows + 1}", arguments
        else:
            allowed_columns = config.get("allowed_columns") or None
            schema = _table_schema(alias, allowed_columns and config["allowed_tables"] or [])
            sql = sql_prepare(arguments.get(config.get("query_argument", "query"), ""),
                              allowed_tables=config["allowed_tables"], dialect=_dialect(alias),
                              max_rows=max_rows, allowed_columns=allowed_columns, schema=schema)
            params = None
        return sql_execute(alias=alias, sql=sql, params=params, timeout_s=context.timeout_s, max_rows=max_rows)
