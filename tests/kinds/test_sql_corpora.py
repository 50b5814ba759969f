"""The SQL corpora as tests: every analyst query accepted, every must-refuse entry refused cleanly,
on Postgres and on the embedded SQLite database, with nothing changed and memory bounded."""
import tracemalloc

from django.contrib.auth.models import User
import pytest

from demo_company.models import BillingAccount, Customer, Order, Product
from demo_company.seed import seed_company
from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.base import InvocationContext, get_kind
from mcp_tools.models import ApiToken

from .sql_support import corpus, sqlite_counts, sqlite_demo_close, sqlite_demo_open

CONFIG = {"allowed_tables": ["users", "products", "orders"], "max_rows": 100}
ANALYST = corpus("analyst-queries.sql")
MUST_REFUSE = corpus("must-refuse.sql")
CLEAR_STARTS = ("Query refused:", "The database refused the query:", "The result is larger than",
                "The query ran longer than")


pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sqlite_alias(django_db_setup, django_db_blocker, tmp_path_factory):
    """An embedded SQLite database holding the seeded demo tables, made once for the module."""
    with django_db_blocker.unblock():
        seed_company()
        alias = sqlite_demo_open(tmp_path_factory.mktemp("sqlite") / "demo.sqlite3")
    yield alias
    sqlite_demo_close()


@pytest.fixture
def company(sqlite_alias):
    """The demo company, with secrets outside the allowed tables so a leak would show."""
    seed_company()
    User.objects.create_user("leaky-admin", "admin@example.com", "pw-outside-the-allow-list")
    ApiToken.objects.create(name="t", prefix="abcdefgh", salt="s", secret_hash="h" * 64)
    return sqlite_alias


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request, company):
    if request.param == "sqlite":
        return {"name": "sqlite", "config": {**CONFIG, "database": company}, "counts": sqlite_counts}
    return {"name": "postgres", "config": CONFIG, "counts": lambda: {
        "users": Customer.objects.count(), "products": Product.objects.count(), "orders": Order.objects.count()}}


def run(query, config, timeout_s=5.0):
    context = InvocationContext(tool_name="database_query", request_id="test", timeout_s=timeout_s)
    return get_kind("sql_query").run({"query": query}, config, context)


def test_the_corpora_are_there():
    assert len(ANALYST) >= 30 and len(MUST_REFUSE) >= 25


@pytest.mark.parametrize("sql, postgres_only", ANALYST, ids=[f"analyst{i:02d}" for i in range(len(ANALYST))])
def test_every_analyst_query_is_accepted(backend, sql, postgres_only):
    if postgres_only and backend["name"] == "sqlite":
        pytest.skip("marked '-- postgres only'")
    result = run(sql, backend["config"])
    assert isinstance(result["rows"], list) and result["row_count"] == len(result["rows"])


@pytest.mark.parametrize("sql, postgres_only", MUST_REFUSE, ids=[f"refuse{i:02d}" for i in range(len(MUST_REFUSE))])
def test_every_must_refuse_entry_fails_cleanly(backend, sql, postgres_only):
    if postgres_only and backend["name"] == "sqlite":
        pytest.skip("marked '-- postgres only'")
    before = backend["counts"]()
    tracemalloc.start()
    try:
        with pytest.raises(ToolError) as caught:
            run(sql, backend["config"], timeout_s=2.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = caught.value.message
    assert message.startswith(CLEAR_STARTS) and len(message) < 1000, message
    assert "Traceback" not in message and "pw-outside" not in message and "h" * 64 not in message
    assert backend["counts"]() == before
    # The rpad entry produces 200 MB; a bounded fetch holds about one row (10 MB) beyond the byte budget.
    assert peak < 40_000_000, f"{peak:,} bytes allocated"


@pytest.mark.parametrize("query", [
    "WITH pg_database AS (SELECT datname FROM pg_database) SELECT datname FROM pg_database",
    "WITH auth_user AS (SELECT * FROM auth_user) SELECT username, password FROM auth_user",
    "WITH users AS (SELECT * FROM mcp_tools_apitoken) SELECT * FROM users",
    "WITH a AS (SELECT 1 AS x), auth_user AS (SELECT * FROM auth_user) SELECT * FROM auth_user",
    "SELECT * FROM (WITH auth_user AS (SELECT 1 AS id) SELECT id FROM auth_user) q, auth_user",
])
def test_a_with_query_never_stands_in_for_a_real_table(backend, query):
    with pytest.raises(ToolError, match="not allowed|no such table|circular reference|could not be parsed"):
        run(query, backend["config"])


def test_a_with_query_named_like_a_table_still_works_where_it_is_in_scope(backend):
    result = run("WITH auth_user AS (SELECT id FROM users) SELECT COUNT(*) AS n FROM auth_user",
                 backend["config"])
    assert result["rows"] == [{"n": 20}]


def test_a_huge_result_is_refused_with_the_limit_in_the_message(company, settings):
    settings.MCP_RESULT_MAX_BYTES = 50_000
    with pytest.raises(ToolError, match=r"larger than the limit of 50,000 bytes \(MCP_RESULT_MAX_BYTES\)"):
        run("SELECT rpad('x', 100000, 'y') AS big FROM users", CONFIG)
    # Within the budget, the same shape of query answers.
    assert run("SELECT rpad('x', 100, 'y') AS big FROM users", CONFIG)["row_count"] == 20


def test_the_seeded_fixed_lookup_checks_and_runs_on_both(backend):
    from demo_company.seed import demo_tools
    from mcp_tools.kinds.sql_query import fixed_query_problems

    tool = next(t for t in demo_tools("http://127.0.0.1:9") if t["name"] == "get_customer_by_email")
    config = {**tool["config"], **{k: v for k, v in backend["config"].items() if k == "database"}}
    alias = config.get("database", "tools_readonly")
    assert fixed_query_problems(config["query"], alias=alias, allowed_tables=config["allowed_tables"],
                                input_schema=tool["input_schema"]) == []
    assert fixed_query_problems("SELECT nope FROM users WHERE email = %(email)s", alias=alias,
                                allowed_tables=["users"], input_schema=tool["input_schema"])
    email = Customer.objects.order_by("id").values_list("email", flat=True).first()
    context = InvocationContext(tool_name="get_customer_by_email", request_id="t", timeout_s=5)
    result = get_kind("sql_query").run({"email": email}, config, context)
    assert [row["email"] for row in result["rows"]] == [email]
