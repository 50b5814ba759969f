"""Edges found by trying the SQL tool as an attacker and an analyst: huge expressions, standard syntax that
Postgres rewrites into catalog calls, result values strict JSON cannot carry, schemas that point elsewhere."""
import datetime as dt

import pytest

from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.sql_query import _json_value, sql_prepare
from mcp_tools.services.schemas import input_schema_problems

DIALECTS = ["postgres", "sqlite"]


def prepare(sql, dialect):
    return sql_prepare(sql, allowed_tables=["users", "orders"], dialect=dialect, max_rows=10)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", [
    "SELECT " + "+".join(["1"] * 50_000),          # crashed a worker in the Postgres parser's tree conversion
    "SELECT " + "+".join(["1"] * 5_000),           # a RecursionError and a 500 before
    "SELECT " + "(" * 10_000 + "1" + ")" * 10_000,  # sqlglot recursed out on SQLite
    "SELECT 1 FROM users WHERE " + " OR ".join(["id = 1"] * 2_000),
])
def test_a_huge_or_deeply_nested_expression_is_refused_with_a_reason(sql, dialect):
    with pytest.raises(ToolError, match="longer than|operators and parentheses|nested too deeply"):
        prepare(sql, dialect)


@pytest.mark.parametrize("sql", [
    r"SELECT id FROM users WHERE email LIKE '%\_%' ESCAPE '\'",
    "SELECT id FROM users WHERE name SIMILAR TO 'A%'",
    "SELECT id FROM orders WHERE (created_at, created_at) OVERLAPS (DATE '2026-01-01', DATE '2026-12-31')",
    'SELECT name COLLATE "C" FROM users ORDER BY 1',
    "SELECT 1 FROM users WHERE " + " AND ".join(["id > 0"] * 100),
])
def test_standard_syntax_postgres_rewrites_into_catalog_calls_is_accepted(sql):
    assert prepare(sql, "postgres").startswith("SELECT * FROM (")


def test_sqlite_date_keywords_are_accepted_at_parse_time():
    assert prepare("SELECT current_date, CURRENT_TIMESTAMP FROM users", "sqlite")


@pytest.mark.parametrize("value, expected", [
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"), (1.5, 1.5),
    (dt.time(12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), "12:00:00+02:00"), (dt.time(9, 30), "09:30:00"),
    (b"A", "41"), (memoryview(b"\x00\xff"), "00ff"), ([float("nan"), 1], ["NaN", 1]),
])
def test_result_values_become_strict_json(value, expected):
    assert _json_value(value) == expected


def test_non_finite_and_zoned_values_reach_the_rest_client_as_json(demo, demo_token, api):
    response = api.post("/mcp/v1/tools/invoke", headers={"Authorization": f"Bearer {demo_token}"}, json={
        "name": "database_query",
        "arguments": {"query": "SELECT 'NaN'::float8 AS x, '12:00+02'::timetz AS t, 'infinity'::float8 AS i "
                               "FROM users LIMIT 1"}})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == [{"x": "NaN", "t": "12:00:00+02:00", "i": "Infinity"}]


def test_a_schema_with_a_remote_ref_is_refused_at_save():
    problems = input_schema_problems({"type": "object", "properties": {"n": {"$ref": "http://127.0.0.1:1/x"}}})
    assert problems and "points outside the schema" in problems[0]
    assert input_schema_problems({"type": "object", "$defs": {"n": {"type": "integer"}},
                                  "properties": {"n": {"$ref": "#/$defs/n"}}}) == []
