"""Read-only SQL over an allow-list of tables (and optionally columns).

Two modes: ``query_argument`` lets the caller write one SELECT; ``fixed`` runs an
admin-written query whose placeholders (``%(name)s``, one per input-schema property)
the caller's arguments fill, so the caller sends no SQL at all.

Three independent walls, so one miss is not a breach:

1. The database's own decision about the statement.
   Postgres: the caller's SQL is parsed by PostgreSQL's own grammar (pglast); the raw parse
   tree is checked against an allow-list of node types, functions, casts and operators, and
   table names are resolved by scope as Postgres resolves them (see sql_guard_postgres).
   What runs is the statement deparsed from that tree, without comments.
   SQLite: sqlglot turns the query into one SQLite SELECT (so Postgres-style date syntax works
   on the embedded database); SQLite's authorizer callback then approves every table, column
   and function the compiled statement touches, names resolved by SQLite itself.
2. The connection: the ``tools_readonly`` alias, a role that may only SELECT the
   demo tables, whose sessions start read-only (SQLite: the file opened ``mode=ro``).
3. The transaction: ``READ ONLY`` with a ``statement_timeout`` (SQLite: a progress
   handler deadline); rows are fetched a few at a time (a server-side cursor on Postgres)
   and the fetch stops at ``max_rows`` rows or ``MCP_RESULT_MAX_BYTES`` bytes of JSON,
   so a huge result is never held in memory.
"""
import datetime as dt
import json
import math
import re
import sqlite3

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from ..exceptions import ServiceUnavailable, ToolError, ToolTimeout
from ..services.readonly_query import readonly_connect, readonly_error, readonly_timeout_ms, readonly_transaction
from . import sql_guard_postgres as pg_guard
from .base import HandlerKind, register

# Functions a query may call on the embedded SQLite database, by SQLite's own name for them
# (the authorizer reports LIKE and GLOB as the functions 'like' and 'glob').
SQLITE_FUNCTIONS = frozenset({
    "count", "sum", "total", "avg", "min", "max", "group_concat", "string_agg", "row_number", "rank",
    "dense_rank", "ntile", "lag", "lead", "first_value", "last_value", "nth_value", "percent_rank", "cume_dist",
    "lower", "upper", "length", "substr", "substring", "trim", "ltrim", "rtrim", "replace", "instr", "abs",
    "round", "coalesce", "ifnull", "nullif", "iif", "max", "min", "date", "time", "datetime", "julianday",
    "strftime", "unixepoch", "like", "glob", "concat", "concat_ws", "current_date", "current_time",
    "current_timestamp", "sign", "ceil",
    "ceiling", "floor", "mod", "power", "pow", "sqrt", "trunc",
})
# Names of system catalogs; never readable, even if an admin lists one.
_SYSTEM_TABLE = pg_guard.SYSTEM_TABLE
# Unicode-escape syntax (U&'..', U&"..") can spell any name; invisible and direction-changing
# characters hide what a query says from the person reading the audit trail.
_UNICODE_ESCAPE = re.compile(r"U&\s*['\"]", re.IGNORECASE)
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# The one placeholder syntax of fixed queries: %(name)s, name a property of the input schema.
PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s")


def _dialect(alias: str) -> str:
    return {"postgresql": "postgres", "sqlite": "sqlite"}.get(connections[alias].vendor, "postgres")


# Parsers and tree walkers recurse: a query of 50,000 chained '+' crashed a worker inside the Postgres
# parser's tree conversion. Bounding the text and the number of operators keeps every tree shallow enough.
MAX_QUERY_CHARS = 20_000
MAX_QUERY_OPERATORS = 1_000
_OPERATOR = re.compile(r"[-+*/%|<>=(]|\b(?:and|or|not)\b", re.IGNORECASE)


def _text_problems(sql) -> list[str]:
    if not isinstance(sql, str) or not sql.strip():
        return ["The query is empty."]
    if len(sql) > MAX_QUERY_CHARS:
        return [f"The query is longer than {MAX_QUERY_CHARS:,} characters."]
    if len(_OPERATOR.findall(sql)) > MAX_QUERY_OPERATORS:
        return [f"The query has more than {MAX_QUERY_OPERATORS:,} operators and parentheses; simplify it."]
    if _INVISIBLE.search(sql):
        return ["The query contains control or invisible Unicode characters."]
    if _UNICODE_ESCAPE.search(sql):
        return ["Unicode-escaped names or strings (U&'...') are not allowed."]
    return []


def _sqlglot_select(sql: str, dialect: str) -> tuple[exp.Expression | None, list[str]]:
    """One SELECT (or set operation of SELECTs) as sqlglot reads it; used on SQLite and for column checks."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, SqlglotError) as exc:
        return None, [f"The query could not be parsed: {str(exc).splitlines()[0][:300]}"]
    if len(statements) != 1:
        return None, ["Send exactly one statement (no ';' chaining)."]
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        return None, ["Only SELECT queries are allowed."]
    # Statement-level nodes sqlglot may nest inside a SELECT; SQLite's authorizer refuses them too.
    for node in tree.walk():
        if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Into,
                             exp.Lock, exp.Command, exp.Pragma)):
            return None, [f"'{node.key.upper()}' is not allowed in a read-only query."]
    return tree, []


def _column_problems(sql: str, allowed_columns: dict, dialect: str, schema: dict) -> list[str]:
    """Resolve every column to its table (stars expanded) and check the restricted tables' columns (Postgres)."""
    tree, problems = _sqlglot_select(sql, dialect)
    if tree is None:
        return [f"Could not resolve the query's columns: {p}" for p in problems]
    restricted = {t.lower(): {c.lower() for c in cols} for t, cols in allowed_columns.items()}
    try:
        qualified = qualify(tree, schema=schema, dialect=dialect, validate_qualify_columns=True,
                            quote_identifiers=False, identify=False)
    except SqlglotError as exc:
        return [f"Could not resolve the query's columns: {str(exc).splitlines()[0][:300]}"]
    problems = []
    for scope in traverse_scope(qualified):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name.lower() in restricted:
                if column.name.lower() not in restricted[source.name.lower()]:
                    problems.append(f"Column '{source.name}.{column.name}' is not allowed; allowed columns of "
                                    f"{source.name}: {', '.join(sorted(restricted[source.name.lower()]))}.")
    return problems


def sql_problems(sql: str, *, allowed_tables: list[str], dialect: str, allowed_columns: dict | None = None,
                 schema: dict | None = None) -> list[str]:
    """Why ``sql`` is not a single read-only SELECT over the allowed tables and columns.

    On SQLite this is the statement's shape only: tables, columns and functions are SQLite's
    authorizer's decision when the statement is compiled (see ``sql_execute``).
    """
    try:
        _prepared(sql, allowed_tables=allowed_tables, dialect=dialect, allowed_columns=allowed_columns,
                  schema=schema)
    except QueryRefused as exc:
        return exc.problems
    return []


class QueryRefused(ToolError):
    def __init__(self, problems: list[str]):
        self.problems = sorted(set(problems))
        super().__init__("Query refused: " + " ".join(self.problems))


def _prepared(sql, *, allowed_tables, dialect, allowed_columns=None, schema=None) -> str:
    problems = _text_problems(sql)
    if problems:
        raise QueryRefused(problems)
    try:
        return _prepared_checked(sql, allowed_tables=allowed_tables, dialect=dialect,
                                 allowed_columns=allowed_columns, schema=schema)
    except RecursionError:  # a second wall behind the operator count: never a crash, always an answer
        raise QueryRefused(["The query is nested too deeply; simplify it."]) from None


def _prepared_checked(sql, *, allowed_tables, dialect, allowed_columns=None, schema=None) -> str:
    if dialect == "postgres":
        problems, tree = pg_guard.select_problems(sql, allowed_tables=allowed_tables)
        if not problems and allowed_columns:
            problems = _column_problems(sql, allowed_columns, dialect, schema or {})
        if problems:
            raise QueryRefused(problems)
        return pg_guard.deparse(tree)
    tree, problems = _sqlglot_select(sql, dialect)
    if problems:
        raise QueryRefused(problems)
    return tree.transform(_sqlite_extract).sql(dialect=dialect, comments=False)


_STRFTIME_UNITS = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d", "HOUR": "%H", "MINUTE": "%M", "SECOND": "%S",
                   "DOW": "%w", "DOY": "%j", "WEEK": "%W"}


def _sqlite_extract(node):
    """SQLite has no EXTRACT: the standard's EXTRACT(YEAR FROM x) becomes CAST(STRFTIME('%Y', x) AS INTEGER)."""
    if isinstance(node, exp.Extract):
        unit = _STRFTIME_UNITS.get(node.this.name.upper())
        if unit:
            return exp.cast(exp.func("STRFTIME", exp.Literal.string(unit), node.expression), "INTEGER")
    return node


def sql_prepare(sql: str, *, allowed_tables: list[str], dialect: str, max_rows: int,
                allowed_columns: dict | None = None, schema: dict | None = None) -> str:
    """The SQL to run for a caller's query: regenerated from the checked tree, row-capped. Raises ToolError."""
    checked = _prepared(sql, allowed_tables=allowed_tables, dialect=dialect, allowed_columns=allowed_columns,
                        schema=schema)
    return f"SELECT * FROM ({checked}) AS mcp_result LIMIT {max_rows + 1}"


def _table_schema(alias: str, tables) -> dict:
    """{table: {column: type}} of ``tables`` as the read-only connection sees them, for column checks."""
    connection = readonly_connect(alias)
    schema = {}
    with connection.cursor() as cursor:
        for table in tables:
            try:
                description = connection.introspection.get_table_description(cursor, table)
            except DatabaseError:
                continue
            schema[table] = {column.name: "text" for column in description}
    return schema


class _SqliteAuthorizer:
    """SQLite's own view of what a compiled statement touches, approved against the tool's allow-lists."""

    def __init__(self, allowed_tables, allowed_columns):
        self.tables = {t.lower() for t in allowed_tables or ()}
        self.columns = {t.lower(): {c.lower() for c in cols} for t, cols in (allowed_columns or {}).items()}
        self.problems: list[str] = []

    def deny(self, message):
        if message not in self.problems:
            self.problems.append(message)
        return sqlite3.SQLITE_DENY

    def __call__(self, action, arg1, arg2, database, trigger):
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            table, column = (arg1 or "").lower(), (arg2 or "").lower()
            if database not in ("main", None):
                return self.deny(f"Table '{database}.{arg1}' is not allowed.")
            if _SYSTEM_TABLE.match(table):
                return self.deny(f"System catalog '{arg1}' is not allowed.")
            if table not in self.tables:
                return self.deny(f"Table '{arg1}' is not allowed; allowed tables: {', '.join(sorted(self.tables))}.")
            if table in self.columns and column and column not in self.columns[table]:
                return self.deny(f"Column '{arg1}.{arg2}' is not allowed; allowed columns of {arg1}: "
                                 f"{', '.join(sorted(self.columns[table]))}.")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in SQLITE_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return self.deny(f"Function '{arg2}' is not allowed.")
        return self.deny("Only SELECT queries are allowed.")


def _row_bytes(columns, row) -> int:
    """Bytes this row adds to the JSON result (keys included), as clients will receive it."""
    encoded = json.dumps([_json_value(value) for value in row], ensure_ascii=False)
    return len(encoded.encode()) + sum(len(c.encode()) + 4 for c in columns)


def _json_value(value):
    """One result value as strict JSON can carry it: NaN and infinities as the strings Postgres prints,
    times (with or without a zone), dates and decimals as ISO 8601 / text, bytes as hex."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _fetch_within_budget(cursor, columns, *, max_rows: int, max_bytes: int) -> tuple[list, bool]:
    """At most ``max_rows + 1`` rows, fetched a few at a time; ToolError once they exceed ``max_bytes``.

    The batch size follows the rows' measured size, so no more than about ``max_bytes`` (plus one
    row) is ever held, whatever the query produces.
    """
    rows, used, batch = [], 2, 1
    while len(rows) <= max_rows:
        chunk = cursor.fetchmany(batch)
        if not chunk:
            break
        for row in chunk:
            used += _row_bytes(columns, row) + 1
            if used > max_bytes:
                raise ToolError(f"The result is larger than the limit of {max_bytes:,} bytes "
                                "(MCP_RESULT_MAX_BYTES); select fewer columns or rows, or shorter values.")
            rows.append(row)
        average = used // max(len(rows), 1)
        batch = max(1, min(100, max_rows + 1 - len(rows), (max_bytes - used) // max(average, 1)))
    return rows, len(rows) > max_rows


def sql_execute(*, alias: str, sql: str, params=None, timeout_s: float, max_rows: int,
                allowed_tables: list[str] | None = None, allowed_columns: dict | None = None,
                max_bytes: int | None = None, stream: bool = True) -> dict:
    """Run ``sql`` on ``alias`` in a read-only transaction with a deadline.

    Returns ``{"columns": [...], "rows": [{column: value}], "row_count": n, "truncated": bool}`` with at
    most ``max_rows`` rows and at most ``max_bytes`` (default ``MCP_RESULT_MAX_BYTES``) bytes of JSON.
    On SQLite, ``allowed_tables``/``allowed_columns`` are enforced by SQLite's authorizer.
    Raises ToolError (refused, too large), ToolTimeout, ServiceUnavailable.
    This is the last wall: it refuses writes and long runs even for SQL no parser has checked.
    """
    timeout_ms = readonly_timeout_ms(timeout_s)
    max_bytes = max_bytes or settings.MCP_RESULT_MAX_BYTES
    authorizer = _SqliteAuthorizer(allowed_tables, allowed_columns)
    try:
        with readonly_transaction(alias, timeout_ms=timeout_ms) as connection:
            if connection.vendor == "postgresql":
                # A server-side cursor: rows stay in Postgres until fetched (DECLARE takes only a query).
                raw_cursor = connection.connection.cursor(name="mcp_result") if stream else \
                    connection.connection.cursor()
                with connection.wrap_database_errors, raw_cursor as cursor:
                    cursor.execute(sql, params)
                    columns = [c[0] for c in cursor.description or []]
                    rows, truncated = _fetch_within_budget(cursor, columns, max_rows=max_rows, max_bytes=max_bytes)
            else:
                raw = connection.connection
                if allowed_tables is not None:
                    raw.set_authorizer(authorizer)
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(sql, params)
                        columns = [c[0] for c in cursor.description or []]
                        rows, truncated = _fetch_within_budget(cursor, columns, max_rows=max_rows,
                                                               max_bytes=max_bytes)
                finally:
                    raw.set_authorizer(None)
    except DatabaseError as exc:
        if authorizer.problems:
            raise QueryRefused(authorizer.problems) from None
        raise readonly_error(exc, timeout_ms=timeout_ms) from None
    # Dates, decimals, times with a zone, non-finite floats and bytes become JSON values clients can read.
    records = [{column: _json_value(value) for column, value in zip(columns, row)} for row in rows[:max_rows]]
    return {"columns": columns, "rows": records, "row_count": len(records), "truncated": truncated}


def sql_plan_problems(*, alias: str, sql: str, placeholders: list[str], allowed_tables: list[str]) -> list[str]:
    """Why the database cannot plan ``sql`` (a fixed query) with every placeholder NULL, or [].

    EXPLAIN only plans, it runs nothing; it runs in the tool's own read-only transaction and role.
    """
    params = {name: None for name in placeholders}
    try:
        sql_execute(alias=alias, sql=f"EXPLAIN {sql}", params=params, timeout_s=5, max_rows=1000,
                    allowed_tables=allowed_tables, max_bytes=10_000_000, stream=False)
    except ToolTimeout:
        return []
    except ServiceUnavailable as exc:
        return [f"The query could not be checked against the database: {exc.message}"]
    except ToolError as exc:
        return [exc.message]
    return []


def fixed_query_problems(query: str, *, alias: str, allowed_tables: list[str],
                         input_schema: dict | None = None) -> list[str]:
    """Save-time checks of a fixed query: its placeholders, its shape, and the database's own plan."""
    placeholders = sorted(set(PLACEHOLDER.findall(query)))
    rest = PLACEHOLDER.sub("", query).replace("%%", "")
    if "%" in rest:
        return ["Placeholders are written %(name)s; write a literal % as %%."]
    problems = []
    if input_schema is not None:
        properties = (input_schema.get("properties") or {}) if isinstance(input_schema, dict) else {}
        problems += [f"Placeholder %({name})s is not a property of the input schema." for name in placeholders
                     if name not in properties]
    dialect = _dialect(alias)
    numbered = {name: index for index, name in enumerate(placeholders, start=1)}
    if dialect == "postgres":
        parseable = PLACEHOLDER.sub(lambda m: f"${numbered[m.group(1)]}", query).replace("%%", "%")
    else:
        parseable = PLACEHOLDER.sub(lambda m: f":{m.group(1)}", query).replace("%%", "%")
    try:
        _prepared(parseable, allowed_tables=allowed_tables, dialect=dialect)
    except QueryRefused as exc:
        return problems + exc.problems
    if not problems:
        problems += sql_plan_problems(alias=alias, sql=query.strip().rstrip(";"), placeholders=placeholders,
                                      allowed_tables=allowed_tables)
    return problems


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
                                     "the input schema (a literal % as %%). Saving plans it on the database with "
                                     "every placeholder NULL. Leave blank to let the caller send the SQL instead.",
                      "examples": ["SELECT id, status, total FROM orders WHERE id = %(order_id)s"]},
            "query_argument": {"type": "string", "default": "query", "title": "Query argument",
                               "description": "Without a fixed query: the argument that carries the caller's "
                                              "SELECT (declare it in the input schema as a string)."},
            "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100, "title": "Max rows",
                         "description": "Rows returned at most; the result says when more matched."},
        },
    }

    def check_config(self, config, *, input_schema=None):
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
            problems += [f"Fixed query: {p}" for p in fixed_query_problems(
                config["query"], alias=alias, allowed_tables=config["allowed_tables"], input_schema=input_schema)]
        elif "query" not in config and input_schema is not None:
            argument = config.get("query_argument", "query")
            if argument not in ((input_schema or {}).get("properties") or {}):
                problems.append(f"This tool has no fixed query, and its input schema has no '{argument}' property "
                                "for the caller's query: it could never run. Add a fixed query or that property.")
        return problems

    def rest_result(self, result):
        """The seed's REST shape: the list of row objects (MCP's structuredContent stays the object)."""
        return result["rows"] if isinstance(result, dict) and "rows" in result else result

    def run(self, arguments, config, context):
        alias = _alias(config)
        max_rows = int(config.get("max_rows", 100))
        allowed_columns = config.get("allowed_columns") or None
        if "query" in config:
            fixed = config["query"].strip().rstrip(";")
            names = set(PLACEHOLDER.findall(fixed))
            sql = f"SELECT * FROM ({fixed}) AS mcp_result LIMIT {max_rows + 1}"
            params = {name: arguments.get(name) for name in names}
        else:
            schema = _table_schema(alias, allowed_columns and config["allowed_tables"] or [])
            sql = sql_prepare(arguments.get(config.get("query_argument", "query"), ""),
                              allowed_tables=config["allowed_tables"], dialect=_dialect(alias),
                              max_rows=max_rows, allowed_columns=allowed_columns, schema=schema)
            params = None
        return sql_execute(alias=alias, sql=sql, params=params, timeout_s=context.timeout_s, max_rows=max_rows,
                           allowed_tables=config["allowed_tables"], allowed_columns=allowed_columns)
