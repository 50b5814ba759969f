"""The caller's SQL, checked with PostgreSQL's own grammar (pglast wraps the server's parser).

The guard trusts the raw parse tree Postgres itself builds, classified by the names of its
node types (``SelectStmt``, ``BoolExpr``, ``FuncCall``, ...): those are the server's C structs,
stable across releases, not a Python library's class hierarchy. Anything whose node type is
not on the allow-list below is refused, so a grammar feature we never thought about is closed
by default.

Table names are resolved by scope, the way Postgres does: a name refers to a WITH query only
where that WITH query is visible (its own statement's body, later WITH queries of the same
list, itself when RECURSIVE); everywhere else it is a real table and must be allow-listed.

What runs is the statement deparsed from the checked tree (comments and anything the parser
did not turn into a node are gone).
"""
import re

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

# Node types of a read-only SELECT an analyst writes. Everything else (RangeFunction, IntoClause,
# LockingClause, XmlExpr, DML/DDL statements, ...) is refused.
ALLOWED_NODES = frozenset({
    "RawStmt", "SelectStmt", "ResTarget", "ColumnRef", "A_Star", "A_Const", "String", "Integer", "Float",
    "Boolean", "BitString", "A_Expr", "BoolExpr", "NullTest", "BooleanTest", "SubLink", "CaseExpr", "CaseWhen",
    "CoalesceExpr", "MinMaxExpr", "SQLValueFunction", "FuncCall", "TypeCast", "TypeName", "RangeVar",
    "RangeSubselect", "JoinExpr", "Alias", "SortBy", "WindowDef", "WithClause", "CommonTableExpr", "ParamRef",
    "A_Indirection", "A_Indices", "A_ArrayExpr", "RowExpr", "GroupingSet", "GroupingFunc", "CollateClause",
})
# Functions by their Postgres name (unqualified, or pg_catalog-qualified only when Postgres itself
# rewrote SQL-standard syntax such as EXTRACT(... FROM ...) into a call).
ALLOWED_FUNCTIONS = frozenset({
    # aggregates
    "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
    "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "percentile_cont",
    "percentile_disc", "mode", "json_agg", "jsonb_agg",
    # window functions
    "row_number", "rank", "dense_rank", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
    "percent_rank", "cume_dist",
    # strings
    "lower", "upper", "length", "char_length", "character_length", "substring", "substr", "trim", "btrim",
    "ltrim", "rtrim", "concat", "concat_ws", "replace", "left", "right", "lpad", "rpad", "position", "strpos",
    "split_part", "initcap", "reverse", "md5", "overlay", "starts_with",
    # numbers
    "abs", "round", "ceil", "ceiling", "floor", "mod", "power", "sqrt", "sign", "trunc", "div",
    # dates
    "extract", "date_trunc", "date_part", "age", "make_date", "to_char", "to_date", "to_timestamp", "now",
    "timezone", "overlaps",
})
# pg_catalog functions that Postgres itself writes for SQL-standard syntax (LIKE ... ESCAPE, SIMILAR TO,
# OVERLAPS) even when the call is not marked as SQL syntax.
CATALOG_SYNTAX_FUNCTIONS = frozenset({"like_escape", "similar_to_escape", "similar_escape", "overlaps"})
ALLOWED_TYPES = frozenset({
    "int2", "int4", "int8", "integer", "smallint", "bigint", "numeric", "decimal", "float4", "float8", "real",
    "text", "varchar", "bpchar", "char", "date", "time", "timetz", "timestamp", "timestamptz", "bool", "boolean",
    "interval", "json", "jsonb", "uuid",
})
ALLOWED_OPERATORS = frozenset({
    "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "||", "~", "~*", "!~", "!~*", "~~", "~~*",
    "!~~", "!~~*", "BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC", "->", "->>", "@>",
    "<@", "?", "#>", "#>>",
})
SYSTEM_TABLE = re.compile(r"^(pg_|information_schema$|sqlite_)", re.IGNORECASE)
_NODE_MESSAGES = {
    "IntoClause": "SELECT ... INTO is not allowed in a read-only query.",
    "LockingClause": "Locking clauses (FOR UPDATE/SHARE) are not allowed in a read-only query.",
    "RangeFunction": "Table functions are not allowed.",
    "RangeTableFunc": "Table functions are not allowed.",
}
_STATEMENT_WORDS = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE"}


def _name(node) -> str:
    return type(node).__name__


def _names(strings) -> list[str]:
    return [s.sval for s in strings or () if isinstance(s, ast.String)]


class _Checker:
    def __init__(self, allowed_tables):
        self.allowed = {t.lower() for t in allowed_tables}
        self.problems: list[str] = []

    def refuse(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def visit(self, value, scope: frozenset) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                self.visit(item, scope)
            return
        if not isinstance(value, ast.Node):
            return
        kind = _name(value)
        if kind not in ALLOWED_NODES:
            word = _STATEMENT_WORDS.get(kind)
            self.refuse(f"'{word}' is not allowed in a read-only query." if word else
                        _NODE_MESSAGES.get(kind, f"'{kind}' is not allowed in a read-only query."))
            return
        handler = getattr(self, f"visit_{kind}", None)
        if handler is not None and handler(value, scope) is False:
            return
        for slot in type(value).__slots__:
            self.visit(getattr(value, slot, None), scope)

    def visit_SelectStmt(self, node, scope):
        if node.valuesLists:
            self.refuse("VALUES lists are not allowed; write a SELECT.")
            return False
        with_clause = node.withClause
        if with_clause is None:
            return None
        ctes = list(with_clause.ctes or ())
        names = [cte.ctename for cte in ctes]
        for index, cte in enumerate(ctes):
            visible = scope | set(names[:index]) | (set(names) if with_clause.recursive else set())
            if _name(cte.ctequery) != "SelectStmt":
                word = _STATEMENT_WORDS.get(_name(cte.ctequery), _name(cte.ctequery))
                self.refuse(f"'{word}' is not allowed in a read-only query.")
                continue
            self.visit(cte.ctequery, frozenset(visible))
        inner = frozenset(scope | set(names))
        for slot in type(node).__slots__:
            if slot != "withClause":
                self.visit(getattr(node, slot, None), inner)
        return False

    def visit_RangeVar(self, node, scope):
        name = node.relname
        if node.schemaname or node.catalogname:
            qualified = ".".join(p for p in (node.catalogname, node.schemaname, name) if p)
            self.refuse(f"Schema-qualified table '{qualified}' is not allowed.")
        elif name in scope:
            pass  # a WITH query visible here, checked where it is defined
        elif SYSTEM_TABLE.match(name):
            self.refuse(f"System catalog '{name}' is not allowed.")
        elif name not in self.allowed:
            self.refuse(f"Table '{name}' is not allowed; allowed tables: {', '.join(sorted(self.allowed))}.")
        return False

    def visit_FuncCall(self, node, scope):
        parts = _names(node.funcname)
        sql_syntax = node.funcformat == enums.CoercionForm.COERCE_SQL_SYNTAX
        if len(parts) == 2 and parts[0] == "pg_catalog" and (sql_syntax or parts[1] in CATALOG_SYNTAX_FUNCTIONS):
            parts = parts[1:]
        name = ".".join(parts)
        if len(parts) != 1 or parts[0] not in ALLOWED_FUNCTIONS | CATALOG_SYNTAX_FUNCTIONS:
            self.refuse(f"Function '{name}' is not allowed.")
        return None

    def visit_TypeCast(self, node, scope):
        parts = _names(node.typeName.names) if node.typeName else []
        if parts[:1] == ["pg_catalog"]:
            parts = parts[1:]
        if len(parts) != 1 or parts[0] not in ALLOWED_TYPES:
            self.refuse(f"Casting to '{'.'.join(parts)}' is not allowed.")
        self.visit(node.arg, scope)
        return False

    def visit_TypeName(self, node, scope):
        self.refuse("Type expressions are only allowed in casts.")
        return False

    def visit_A_Expr(self, node, scope):
        parts = _names(node.name)
        operator = parts[-1] if parts else ""
        if len(parts) > 1 or (operator and operator not in ALLOWED_OPERATORS):
            self.refuse(f"Operator '{'.'.join(parts)}' is not allowed.")
        return None


def _parse(sql: str):
    try:
        return parse_sql(sql), []
    except ParseError as exc:
        return None, [f"The query could not be parsed: {str(exc).splitlines()[0][:300]}"]


def select_problems(sql: str, *, allowed_tables) -> tuple[list[str], object]:
    """(problems, tree): why ``sql`` is not one read-only SELECT over ``allowed_tables``; tree when none."""
    statements, problems = _parse(sql)
    if problems:
        return problems, None
    if len(statements) != 1:
        return ["Send exactly one statement (no ';' chaining)."], None
    statement = statements[0].stmt
    if _name(statement) != "SelectStmt":
        return ["Only SELECT queries are allowed."], None
    checker = _Checker(allowed_tables)
    checker.visit(statement, frozenset())
    return sorted(checker.problems), (statements if not checker.problems else None)


def deparse(statements) -> str:
    """The SQL Postgres will run for a checked tree: regenerated, without comments."""
    return RawStream()(statements)
