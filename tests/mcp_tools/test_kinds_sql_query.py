"""The sql_query kind: the parser's refusals, the read-only role, the timeout and the row cap."""
import sqlite3

from django.conf import settings
from django.db import connections
import pytest

from demo_company.models import Customer, Order, Product
from demo_company.seed import seed_company
from mcp_project.readonly_db import derived_readonly_url, readonly_database
from mcp_tools.exceptions import ToolError, ToolTimeout
from mcp_tools.kinds.base import InvocationContext, get_kind
from mcp_tools.kinds.sql_query import sql_execute, sql_prepare, sql_problems
from mcp_tools.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "tools_readonly"])

READONLY = "tools_readonly"
CONFIG = {"allowed_tables": ["users", "products", "orders"], "max_rows": 100}


@pytest.fixture
def company():
    seed_company()
    return {"users": Customer.objects.count(), "products": Product.objects.count(),
            "orders": Order.objects.count()}


def run(query, config=CONFIG, timeout_s=5.0):
    context = InvocationContext(tool_name="database_query", request_id="test", timeout_s=timeout_s)
    return get_kind("sql_query").run({"query": query}, config, context)


def counts():
    return {"users": Customer.objects.count(), "products": Product.objects.count(),
            "orders": Order.objects.count()}


def test_it_runs_a_plain_select_through_the_readonly_role(company):
    result = run("SELECT id, name, email FROM users ORDER BY id LIMIT 3")
    assert result["row_count"] == 3 and result["columns"] == ["id", "name", "email"]
    with connections[READONLY].cursor() as cursor:
        cursor.execute("SELECT current_user, current_setting('transaction_read_only')")
        assert cursor.fetchone() == (settings.MCP_SQL_READONLY_ROLE, "on")


def test_joins_aggregates_ctes_and_windows_are_allowed(company):
    result = run("""
        WITH spend AS (SELECT user_id, SUM(total_cents) AS cents FROM orders GROUP BY user_id)
        SELECT u.state, COUNT(*) AS n, MAX(s.cents), ROW_NUMBER() OVER (ORDER BY u.state) AS rn,
               LOWER(u.name) LIKE '%a%' AS has_a, CAST(u.id AS text)
        FROM users u JOIN spend s ON s.user_id = u.id
        WHERE u.created_at > CURRENT_DATE - INTERVAL '1 year'
        GROUP BY u.state, u.name, u.id ORDER BY u.state""")
    assert result["row_count"] > 0


BYPASSES = {
    "cte_insert": "WITH x AS (INSERT INTO users (name, email) VALUES ('e', 'e@x.com') RETURNING id) SELECT * FROM x",
    "cte_update": "WITH x AS (UPDATE users SET name = 'pwned' RETURNING id) SELECT * FROM x",
    "cte_delete": "WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x",
    "commit_drop": "SELECT 1; COMMIT; DROP TABLE users",
    "commit_drop_no_space": "SELECT 1;COMMIT;DROP TABLE orders;",
    "comment_hides_semicolon": "SELECT 1 /* harmless */; DELETE FROM orders -- */",
    "line_comment_newline": "SELECT 1 --\n; DELETE FROM orders",
    "escape_string": "SELECT E'\\''; DELETE FROM orders; --'",
    "select_into": "SELECT * INTO stolen FROM users",
    "copy_to_program": "COPY users TO PROGRAM 'id'",
    "copy_from": "COPY users FROM '/etc/passwd'",
    "pg_sleep": "SELECT pg_sleep(10)",
    "pg_sleep_in_where": "SELECT id FROM users WHERE pg_sleep(10) IS NULL",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "dblink": "SELECT * FROM dblink('host=10.0.0.1', 'select 1') AS t(a int)",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "set_config": "SELECT set_config('default_transaction_read_only', 'off', false)",
    "current_setting": "SELECT current_setting('data_directory')",
    "version": "SELECT version()",
    "nextval": "SELECT nextval('users_id_seq')",
    "generate_series": "SELECT * FROM generate_series(1, 100000000)",
    "lateral_function": "SELECT * FROM users, LATERAL pg_sleep(1)",
    "query_to_xml": "SELECT query_to_xml('select * from mcp_tools_apitoken', true, true, '')",
    "regclass_cast": "SELECT 'mcp_tools_apitoken'::regclass",
    "pg_catalog": "SELECT * FROM pg_catalog.pg_authid",
    "pg_shadow_unqualified": "SELECT usename, passwd FROM pg_shadow",
    "information_schema": "SELECT * FROM information_schema.tables",
    "sqlite_master": "SELECT * FROM sqlite_master",
    "other_table": "SELECT * FROM mcp_tools_apitoken",
    "other_table_in_subquery": "SELECT (SELECT secret_hash FROM mcp_tools_apitoken LIMIT 1) FROM users",
    "other_table_in_union": "SELECT name FROM users UNION SELECT secret_hash FROM mcp_tools_apitoken",
    "schema_qualified": "SELECT * FROM public.users",
    "for_update": "SELECT * FROM users FOR UPDATE",
    "for_share": "SELECT * FROM orders FOR SHARE",
    "unicode_escape_identifier": 'SELECT U&"\\0070g_sleep"(1)',
    "unicode_escape_table": 'SELECT * FROM U&"\\006dcp_tools_apitoken"',
    "zero_width_space": "SELECT 1;\u200b DELETE FROM orders",
    "bidi_override": "SELECT name FROM users -- \u202e; DELETE FROM orders",
    "fullwidth_semicolon": "SELECT 1\uff1b DELETE FROM orders",
    "nul_byte": "SELECT 1\x00; DELETE FROM orders",
    "insert": "INSERT INTO users (name, email) VALUES ('e', 'e@x.com')",
    "update": "UPDATE users SET name = 'x'",
    "delete": "DELETE FROM orders",
    "truncate": "TRUNCATE orders",
    "drop": "DROP TABLE users",
    "grant": "GRANT ALL ON users TO PUBLIC",
    "set": "SET default_transaction_read_only = off",
    "begin": "BEGIN",
    "values": "VALUES (1)",
    "explain_analyze": "EXPLAIN ANALYZE DELETE FROM orders",
    "empty": "   ",
    "not_sql": "hello there",
}


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_known_bypasses_are_refused_and_change_nothing(company, name):
    before = counts()
    with pytest.raises(ToolError) as caught:
        run(BYPASSES[name])
    assert not isinstance(caught.value, ToolTimeout)
    message = caught.value.message
    assert message.startswith("Query refused:") or message.startswith("The database refused"), message
    assert counts() == before


@pytest.mark.parametrize("query, expected", [
    ("SELECT 1; DROP TABLE users", "exactly one statement"),
    ("WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x", "'DELETE' is not allowed"),
    ("SELECT * INTO t FROM users", "SELECT ... INTO is not allowed"),
    ("SELECT * FROM users FOR UPDATE", "Locking clauses"),
    ("SELECT pg_sleep(1)", "Function 'pg_sleep' is not allowed"),
    ("SELECT * FROM pg_catalog.pg_class", "Schema-qualified table"),
    ("SELECT * FROM pg_class", "System catalog 'pg_class'"),
    ("SELECT * FROM secrets", "Table 'secrets' is not allowed; allowed tables: orders, products, users."),
    ("SELECT 'x'::regclass", "Casting to 'regclass' is not allowed"),
    ("COPY users TO STDOUT", "Only SELECT queries are allowed"),
])
def test_refusals_say_why(query, expected):
    problems = sql_problems(query, allowed_tables=["users", "products", "orders"], dialect="postgres")
    assert any(expected in p for p in problems), problems


def test_a_nested_comment_hides_nothing_from_the_parser(company):
    # Postgres nests block comments; so does sqlglot: the DELETE is comment text, and is not sent.
    before = counts()
    assert run("SELECT 1 AS one /* /* */ ; DELETE FROM orders; -- */")["rows"] == [{"one": 1}]
    assert counts() == before


def test_what_runs_is_the_regenerated_query_without_comments():
    sql = sql_prepare("SELECT name /* ; DELETE FROM orders */ FROM users -- trailing", allowed_tables=["users"],
                      dialect="postgres", max_rows=10)
    assert "DELETE" not in sql and "/*" not in sql and "--" not in sql
    assert sql.endswith("LIMIT 11")


def test_huge_results_are_capped_at_max_rows(company):
    # A cross join of 20 users with 40 orders, twice: 32,000 rows asked for, at most max_rows + 1 fetched.
    result = run("SELECT u.id, o.id, o2.id FROM users u, orders o, orders o2", config={**CONFIG, "max_rows": 7})
    assert result["row_count"] == 7 and result["truncated"] is True


def test_a_user_limit_below_the_cap_is_kept(company):
    result = run("SELECT id FROM users LIMIT 3")
    assert result["row_count"] == 3 and result["truncated"] is False


def test_a_slow_query_hits_the_statement_timeout(company):
    # Only allowed functions: a big cross join is slow by itself.
    with pytest.raises(ToolTimeout, match="cancelled"):
        run("SELECT COUNT(*) FROM orders a, orders b, orders c, orders d, orders e, orders f",
            timeout_s=0.3)
    assert run("SELECT COUNT(*) AS n FROM users")["rows"] == [{"n": company["users"]}]


class TestReadOnlyRoleWithoutTheParser:
    """sql_execute is the last wall: hand it writes no parser has seen; the database itself says no."""

    @pytest.mark.parametrize("statement", [
        "INSERT INTO users (name, email, state, plan, created_at) VALUES ('x', 'x@x.com', 'CA', 'free', now())",
        "UPDATE users SET name = 'pwned'",
        "DELETE FROM orders",
        "WITH x AS (DELETE FROM orders RETURNING id) SELECT * FROM x",
        "SELECT * INTO stolen FROM users",
        "CREATE TABLE stolen (id int)",
        "DROP TABLE orders",
        "TRUNCATE orders",
        "COMMIT; DELETE FROM orders",
        "COMMIT; SET default_transaction_read_only = off; DELETE FROM orders",
        "SELECT set_config('transaction_read_only', 'off', true); DELETE FROM orders",
        "COPY users TO STDOUT",
    ])
    def test_the_database_refuses_a_write(self, company, statement):
        before = counts()
        with pytest.raises(ToolError):
            sql_execute(alias=READONLY, sql=statement, timeout_s=5, max_rows=10)
        assert counts() == before

    def test_it_cannot_read_tables_it_was_not_granted(self, company):
        ApiToken.objects.create(name="t", prefix="abcdefgh", salt="s", secret_hash="h" * 64)
        with pytest.raises(ToolError, match="permission denied"):
            sql_execute(alias=READONLY, sql="SELECT secret_hash FROM mcp_tools_apitoken", timeout_s=5,
                        max_rows=10)

    def test_pg_sleep_is_cut_by_the_statement_timeout(self, company):
        with pytest.raises(ToolTimeout):
            sql_execute(alias=READONLY, sql="SELECT pg_sleep(5)", timeout_s=0.3, max_rows=1)


class TestConfig:
    def check(self, config):
        return get_kind("sql_query").check_config(config)

    def test_system_catalogs_cannot_be_allow_listed(self):
        assert self.check({"allowed_tables": ["pg_authid"]}) == ["System catalog 'pg_authid' may not be listed."]

    def test_the_writable_default_alias_is_refused(self):
        assert "read-only alias" in self.check({"allowed_tables": ["users"], "database": "default"})[0]

    def test_a_fixed_query_is_checked(self):
        problems = self.check({"allowed_tables": ["users"], "query": "DELETE FROM users"})
        assert problems == ["Fixed query: Only SELECT queries are allowed."]

    def test_allowed_columns_must_name_allowed_tables(self):
        problems = self.check({"allowed_tables": ["users"], "allowed_columns": {"orders": ["id"]}})
        assert problems == ["allowed_columns names table 'orders', which is not in allowed_tables."]

    def test_a_legacy_default_alias_still_runs_read_only(self, company):
        result = run("SELECT COUNT(*) AS n FROM users", config={**CONFIG, "database": "default"})
        assert result["rows"] == [{"n": company["users"]}]


class TestAllowedColumns:
    config = {**CONFIG, "allowed_columns": {"users": ["id", "name", "state"]}}

    def test_allowed_columns_can_be_read(self, company):
        result = run("SELECT u.id, name FROM users u WHERE state = 'CA' ORDER BY name", config=self.config)
        assert result["columns"] == ["id", "name"] and result["row_count"] > 0

    @pytest.mark.parametrize("query", [
        "SELECT email FROM users",
        "SELECT * FROM users",
        "SELECT u.* FROM users u",
        "SELECT name FROM users WHERE email LIKE 'a%'",
        "SELECT x FROM (SELECT email AS x FROM users) q",
        "WITH c AS (SELECT * FROM users) SELECT name FROM c",
        "SELECT o.id FROM orders o JOIN users u ON u.email = 'a@b.c'",
        "SELECT COUNT(*) FROM users GROUP BY plan",
        "SELECT 1 AS email, COUNT(*) FROM users GROUP BY email",  # Postgres groups by the input column
        "SELECT name FROM users ORDER BY email",
    ])
    def test_other_columns_are_refused(self, company, query):
        with pytest.raises(ToolError, match="not allowed|Could not resolve"):
            run(query, config=self.config)

    def test_unrestricted_tables_stay_open(self, company):
        assert run("SELECT * FROM orders LIMIT 1", config=self.config)["row_count"] == 1


class TestEmbeddedSqlite:
    def test_the_sqlite_alias_opens_the_file_read_only(self, tmp_path):
        path = tmp_path / "a dir?#" / "db.sqlite3"
        path.parent.mkdir()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE users (id integer)")
        config = readonly_database(default={"ENGINE": "django.db.backends.sqlite3", "NAME": path},
                                   database_url="", readonly_url="", role="r", password="",
                                   statement_timeout_ms=1000)
        assert config["NAME"].startswith("file:///") and config["NAME"].endswith("/db.sqlite3?mode=ro")
        db = sqlite3.connect(config["NAME"], uri=True)
        assert db.execute("SELECT COUNT(*) FROM users").fetchone() == (0,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("INSERT INTO users VALUES (1)")
        db.close()


class TestReadOnlyUrl:
    def test_it_is_derived_from_database_url_with_the_role(self):
        url = derived_readonly_url("postgres://app:pw@db.internal:5433/shop", role="mcp_readonly", password="s3")
        assert url == "postgres://mcp_readonly:s3@db.internal:5433/shop"

    def test_the_applications_own_user_is_refused(self):
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured):
            readonly_database(default={"ENGINE": "django.db.backends.postgresql", "USER": "app"},
                              database_url="postgres://app@h/db", readonly_url="postgres://app@h/db",
                              role="r", password="", statement_timeout_ms=1000)
