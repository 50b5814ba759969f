"""Model query tools run through the pipeline: the seed's lookups, paging, bounds and every refusal (audited)."""
from contextlib import contextmanager
from datetime import datetime
import json

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
import pytest

from demo_company.models import Customer, Order
from demo_company.seed import seed_company, seed_tools
from mcp_tools.exceptions import ToolError, ToolTimeout
from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.readonly_query import readonly_error, readonly_timeout_ms, readonly_transaction
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save

pytestmark = pytest.mark.django_db(transaction=True)  # committed: the tools read through the read-only connection
READONLY = settings.MCP_SQL_READONLY_ALIAS


@pytest.fixture
def tools():
    seed_company()
    return {tool.name: tool for tool in seed_tools("http://127.0.0.1:8000")}


@pytest.fixture
def caller(tools):
    return Caller(token=token_issue(name="t", all_tools=True).token, client_ip="127.0.0.1", transport="test")


def call(caller, name, arguments):
    return tool_invoke(name=name, arguments=arguments, caller=caller)


def last_order_of(customer):
    order = Order.objects.filter(customer=customer).order_by("-created_at", "-id").first()
    return order and {"id": order.id, "product_id": order.product_id, "quantity": order.quantity,
                      "total_cents": order.total_cents, "status": order.status}


class TestTheSeedLookupsWithoutSql:
    def test_find_customers_returns_what_the_sql_tool_returns(self, caller):
        email = Customer.objects.order_by("id").first().email
        by_sql = call(caller, "get_customer_by_email", {"email": email})
        by_model = call(caller, "find_customers", {"filter": {"email": {"exact": email}}})
        assert by_model.ok, by_model.message
        assert by_model.result["next_cursor"] is None
        [row] = by_model.result["results"]
        [sql_row] = by_sql.result["rows"]
        assert row == sql_row
        assert datetime.fromisoformat(row["created_at"]).tzinfo is not None  # ISO 8601 with its offset
        case_blind = call(caller, "find_customers", {"filter": {"email": {"iexact": email.upper()}}})
        assert case_blind.result["results"] == [row]

    def test_customers_in_california_come_with_their_last_order(self, caller):
        outcome = call(caller, "customers_with_last_order", {"filter": {"state": {"exact": "CA"}}, "page_size": 50})
        assert outcome.ok, outcome.message
        expected = list(Customer.objects.filter(state="CA").order_by("name", "id"))
        assert [row["email"] for row in outcome.result["results"]] == [c.email for c in expected]
        with_orders = 0
        for row, customer in zip(outcome.result["results"], expected):
            got = row["last_order"] and {k: v for k, v in row["last_order"].items() if k != "created_at"}
            assert got == last_order_of(customer)
            with_orders += row["last_order"] is not None
        assert with_orders > 0
        # The output matches the schema the tool shows agents (the pipeline checked it).
        assert Tool.objects.get(name="customers_with_last_order").output_schema["properties"]["results"]

    def test_a_customer_without_orders_gets_null(self, caller):
        Customer.objects.create(name="Aaron Newcomer", email="aaron@example.com", state="CA")
        outcome = call(caller, "customers_with_last_order", {"filter": {"state": {"exact": "CA"}}})
        assert outcome.result["results"][0]["email"] == "aaron@example.com"
        assert outcome.result["results"][0]["last_order"] is None

    def test_counting_per_state(self, caller):
        outcome = call(caller, "customers_with_last_order", {
            "filter": {"state": {"in": ["CA", "NY", "TX"]}}, "aggregate": {"count": True, "group_by": ["state"]},
            "order_by": ["-count", "state"]})
        assert outcome.ok, outcome.message
        expected = (Customer.objects.filter(state__in=["CA", "NY", "TX"]).values("state")
                    .annotate(count=Count("id")).order_by("-count", "state"))
        assert outcome.result["groups"] == list(expected)

    def test_the_query_runs_on_the_read_only_connection(self, caller):
        with CaptureQueriesContext(connections[READONLY]) as readonly, \
                CaptureQueriesContext(connections["default"]) as default:
            assert call(caller, "customers_with_last_order", {"filter": {"state": {"exact": "CA"}}}).ok
        assert any('FROM "users"' in q["sql"] for q in readonly.captured_queries)
        assert any('FROM "orders"' in q["sql"] for q in readonly.captured_queries)
        assert any("SET TRANSACTION READ ONLY" in q["sql"] for q in readonly.captured_queries)
        assert not any('FROM "users"' in q["sql"] or 'FROM "orders"' in q["sql"] for q in default.captured_queries)


class TestPaging:
    def test_walking_the_cursor_returns_every_row_once(self, caller):
        seen, arguments = [], {"page_size": 3, "order_by": ["-created_at"]}
        while True:
            outcome = call(caller, "find_customers", arguments)
            assert outcome.ok, outcome.message
            assert len(outcome.result["results"]) <= 3
            seen += [row["id"] for row in outcome.result["results"]]
            if outcome.result["next_cursor"] is None:
                break
            arguments = {**arguments, "cursor": outcome.result["next_cursor"]}
        assert seen == list(Customer.objects.order_by("-created_at", "id").values_list("id", flat=True))

    def test_the_byte_budget_ends_a_page_early_and_the_cursor_carries_on(self, caller, settings):
        settings.MCP_RESULT_MAX_BYTES = 1200
        first = call(caller, "find_customers", {"page_size": 50})
        rows = first.result["results"]
        assert 0 < len(rows) < Customer.objects.count()
        assert len(json.dumps(first.result)) <= 1200
        second = call(caller, "find_customers", {"page_size": 50, "cursor": first.result["next_cursor"]})
        assert second.result["results"][0]["name"] >= rows[-1]["name"]
        assert not {r["id"] for r in rows} & {r["id"] for r in second.result["results"]}

    def test_one_row_larger_than_the_budget_is_a_tool_error(self, caller, settings):
        settings.MCP_RESULT_MAX_BYTES = 250
        outcome = call(caller, "customers_with_last_order", {"filter": {"state": {"exact": "CA"}}})
        assert outcome.outcome == "tool_error" and "byte result budget" in outcome.message


REFUSALS = {
    "unknown filter field": ("find_customers", {"filter": {"secret": {"exact": 1}}},
                             "'secret' is not one of ['created_at', 'email', 'plan', 'state']"),
    "relation traversal": ("find_customers", {"filter": {"order__total_cents": {"gt": 0}}},
                           "'order__total_cents' is not one of ['created_at', 'email', 'plan', 'state']"),
    "lookup not allowed": ("find_customers", {"filter": {"state": {"icontains": "C"}}},
                           "'icontains' is not one of ['exact', 'in']"),
    "lookup traversal": ("find_customers", {"filter": {"email": {"exact__in": ["a"]}}},
                         "'exact__in' is not one of ['exact', 'iexact']"),
    "huge in list": ("find_customers", {"filter": {"state": {"in": ["CA"] * 5000}}},
                     "has 5000 items; at most 100 are allowed"),
    "unticked ordering": ("find_customers", {"order_by": ["id"]},
                          "'id' is not one of ['created_at', '-created_at', 'email'"),
    "ordering traversal": ("find_customers", {"order_by": ["order__total_cents"]}, "'order__total_cents' is not one"),
    "unknown argument": ("find_customers", {"fields": ["email"]}, "'fields' is not one of ['cursor', 'filter', "),
    "page too large": ("find_customers", {"page_size": 10_000}, "10000 is greater than the maximum of 50"),
    "aggregate not offered": ("find_customers", {"aggregate": {"count": True}}, "'aggregate' is not one of"),
    "group by unticked": ("customers_with_last_order", {"filter": {"state": {"exact": "CA"}},
                                                        "aggregate": {"count": True, "group_by": ["email"]}},
                          "'email' is not one of ['state']"),
    "required filter missing": ("customers_with_last_order", {}, "'filter' is a required property"),
    "tampered cursor": ("find_customers", {"cursor": "eyJvIjo5OTk5OTl9:forged"}, "not a cursor this tool issued"),
    "bad date": ("find_customers", {"filter": {"created_at": {"gte": "last tuesday"}}},
                 "'last tuesday' is not an ISO 8601 date-time"),
}


@pytest.mark.parametrize("name,arguments,expected", REFUSALS.values(), ids=REFUSALS.keys())
def test_reaching_beyond_the_ticks_is_refused_naming_what_is_allowed_and_audited(caller, name, arguments, expected):
    outcome = call(caller, name, arguments)
    assert (outcome.outcome, outcome.error_code) == ("invalid", "invalid_arguments"), outcome.message
    assert expected in outcome.message
    assert len(outcome.message) < 2000
    event = AuditEvent.objects.get(tool_name=name)
    assert (event.outcome, event.error_code) == ("invalid", "invalid_arguments")


KIND_REFUSALS = {
    "unknown filter field": ({"filter": {"secret": {"exact": 1}}},
                             "filter: 'secret' may not be filtered on; allowed: created_at, email, plan, state."),
    "traversal": ({"filter": {"order__status": {"exact": "paid"}}}, "filter: 'order__status' may not be filtered "
                                                                     "on; allowed: created_at, email, plan, state."),
    "lookup": ({"filter": {"state": {"regex": ".*"}}}, "filter.state: lookup 'regex' is not allowed; allowed: "
                                                       "exact, in."),
    "huge in list": ({"filter": {"state": {"in": ["CA"] * 101}}}, "filter.state.in: give 1 to 100 values (got 101)."),
    "ordering": ({"order_by": ["-id"]}, "order_by: '-id' is not allowed; results may be ordered by: created_at, "
                                        "email, name ('-' first for descending)."),
    "argument": ({"select": "*"}, "Unknown argument(s) select; allowed: filter, order_by, page_size, cursor."),
    "wrong type": ({"filter": {"state": {"exact": {"$ne": 1}}}}, "filter.state.exact: give a single text value."),
    "aggregate": ({"aggregate": {"count": True}},
                  "aggregate: this tool does not aggregate; list rows with filter and order_by."),
}


@pytest.mark.parametrize("arguments,expected", KIND_REFUSALS.values(), ids=KIND_REFUSALS.keys())
def test_the_kind_refuses_on_its_own_when_the_input_schema_was_loosened(caller, tools, arguments, expected):
    # Someone widened the stored schema behind the admin's back: the kind still holds the line.
    Tool.objects.filter(name="find_customers").update(input_schema={"type": "object"})
    outcome = call(caller, "find_customers", arguments)
    assert (outcome.outcome, outcome.message) == ("invalid", expected)
    assert AuditEvent.objects.get(tool_name="find_customers").outcome == "invalid"


def test_a_cursor_from_another_query_is_refused(caller):
    first = call(caller, "find_customers", {"filter": {"state": {"exact": "CA"}}, "page_size": 1})
    replay = call(caller, "find_customers", {"filter": {"state": {"exact": "NY"}}, "page_size": 1,
                                             "cursor": first.result["next_cursor"]})
    assert replay.outcome == "invalid" and "another filter, order_by or aggregate" in replay.message
    edited = first.result["next_cursor"].replace(first.result["next_cursor"][5], "A" if
                                                 first.result["next_cursor"][5] != "A" else "B", 1)
    tampered = call(caller, "find_customers", {"filter": {"state": {"exact": "CA"}}, "cursor": edited})
    assert tampered.outcome == "invalid" and "not a cursor this tool issued" in tampered.message


def test_fixed_filters_cannot_be_widened_by_the_caller(caller, tools):
    tool_save(tool=Tool(name="california_customers", description="CA only", kind="model_query", config={
        "model": "demo_company.Customer", "fields": ["email", "state"], "filters": {"state": ["exact", "in"]},
        "fixed_filters": {"state": "CA"}}))
    everyone = call(caller, "california_customers", {"page_size": 50})
    assert {row["state"] for row in everyone.result["results"]} == {"CA"}
    assert call(caller, "california_customers", {"filter": {"state": {"exact": "NY"}}}).result["results"] == []
    widened = call(caller, "california_customers", {"filter": {"state": {"in": ["NY", "CA", "TX"]}},
                                                    "page_size": 50})
    assert {row["state"] for row in widened.result["results"]} == {"CA"}


def test_sums_and_averages_over_ticked_numeric_fields(caller, tools):
    tool_save(tool=Tool(name="order_totals", description="Order totals by status", kind="model_query", config={
        "model": "demo_company.Order", "fields": ["id"], "filters": {"status": ["exact", "in"]},
        "aggregations": {"functions": ["count", "sum", "avg", "max"], "fields": ["total_cents", "quantity"],
                         "group_by": ["status"]}}))
    outcome = call(caller, "order_totals", {"aggregate": {"count": True, "sum": ["total_cents"], "avg": ["quantity"],
                                                          "group_by": ["status"]}})
    assert outcome.ok, outcome.message
    by_status = {g["status"]: g for g in outcome.result["groups"]}
    for status in ("paid", "unpaid", "refunded"):
        orders = list(Order.objects.filter(status=status))
        if orders:
            assert by_status[status]["count"] == len(orders)
            assert by_status[status]["sum_total_cents"] == sum(o.total_cents for o in orders)
            assert by_status[status]["avg_quantity"] == pytest.approx(sum(o.quantity for o in orders) / len(orders))
    total = call(caller, "order_totals", {"aggregate": {"max": ["total_cents"]}})
    assert total.result["groups"] == [{"max_total_cents": max(Order.objects.values_list("total_cents", flat=True))}]
    refused = call(caller, "order_totals", {"aggregate": {"sum": ["id"]}})
    assert refused.outcome == "invalid" and "'id' is not one of ['quantity', 'total_cents']" in refused.message


@contextmanager
def _readonly_transaction(alias, timeout_s):
    """The transaction the kind runs its ORM query in, with its errors mapped as the kind maps them."""
    timeout_ms = readonly_timeout_ms(timeout_s)
    try:
        with readonly_transaction(alias, timeout_ms=timeout_ms):
            yield
    except DatabaseError as exc:
        raise readonly_error(exc, timeout_ms=timeout_ms) from None


class TestBounds:
    def test_the_transaction_is_read_only_and_cancelled_at_the_timeout(self, tools):
        with pytest.raises(ToolTimeout, match="longer than 0.2s"):
            with _readonly_transaction(READONLY, 0.2):
                with connections[READONLY].cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(5)")
        with pytest.raises(ToolError, match="read-only transaction"):
            with _readonly_transaction(READONLY, 5):
                with connections[READONLY].cursor() as cursor:
                    cursor.execute("SELECT set_config('default_transaction_read_only', 'off', true); "
                                   "UPDATE users SET name = 'x'")
        assert not Customer.objects.filter(name="x").exists()
        # The session is as it was opened: the next call works.
        with _readonly_transaction(READONLY, 5):
            assert Customer.objects.using(READONLY).count() == Customer.objects.count()

    def test_a_stale_config_is_a_tool_error_not_a_crash(self, caller, tools):
        Tool.objects.filter(name="find_customers").update(config={"model": "demo_company.Customer",
                                                                  "fields": ["password"]})
        outcome = call(caller, "find_customers", {})
        assert outcome.outcome == "tool_error" and "misconfigured" in outcome.message


class TestRestPair:
    def test_an_agent_lists_and_calls_the_demo_tools_over_rest(self, api, tools):
        secret = token_issue(name="rest", all_tools=True).secret
        headers = {"Authorization": f"Bearer {secret}"}
        listed = {t["name"]: t for t in api.get("/mcp/v1/tools", headers=headers).json()["tools"]}
        for name in ("find_customers", "customers_with_last_order"):
            assert listed[name]["input_schema"] == Tool.objects.get(name=name).input_schema
            assert Tool.objects.get(name=name).annotations["readOnlyHint"] is True
        email = Customer.objects.order_by("id").first().email
        found = api.post("/mcp/v1/tools/invoke", headers=headers, json={
            "name": "find_customers", "arguments": {"filter": {"email": {"exact": email}}}})
        assert found.status_code == 200, found.text
        assert [r["email"] for r in found.json()["result"]["results"]] == [email]
        joined = api.post("/mcp/v1/tools/invoke", headers=headers, json={
            "name": "customers_with_last_order", "arguments": {"filter": {"state": {"exact": "CA"}}}})
        assert joined.status_code == 200 and all("last_order" in r for r in joined.json()["result"]["results"])
        refused = api.post("/mcp/v1/tools/invoke", headers=headers, json={
            "name": "find_customers", "arguments": {"filter": {"customer__email": {"exact": email}}}})
        assert refused.status_code == 400
        assert "is not one of ['created_at', 'email', 'plan', 'state']" in json.dumps(refused.json())
        assert AuditEvent.objects.filter(tool_name="find_customers", outcome="invalid").count() == 1


SQLITE_SCRIPT = """
import json
from demo_company.seed import seed_company, seed_tools
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from django.db import DatabaseError, connections
seed_company()
seed_tools("http://127.0.0.1:8000")
caller = Caller(token=token_issue(name="t", all_tools=True).token, transport="test")
calls = json.loads({calls!r})
out = [tool_invoke(name=name, arguments=arguments, caller=caller) for name, arguments in calls]
vendor = connections["tools_readonly"].vendor, connections["tools_readonly"].settings_dict["NAME"]
print("RESULT" + json.dumps({{"vendor": vendor, "calls": [[r.outcome, r.result, r.message] for r in out]}}))
"""
SAME_CALLS = [
    ["find_customers", {"filter": {"state": {"in": ["CA", "NY"]}, "created_at": {"year": datetime.now().year}},
                        "page_size": 50}],
    ["customers_with_last_order", {"filter": {"state": {"exact": "CA"}}, "page_size": 4}],
    ["customers_with_last_order", {"filter": {"state": {"in": ["CA", "NY", "TX", "WA"]}},
                                   "aggregate": {"count": True, "group_by": ["state"]}, "order_by": ["-count"]}],
    ["customers_with_last_order", {"filter": {"state": {"exact": "CA"}}, "order_by": ["email"]}],
]


def comparable(calls):
    """What must agree between databases (keys and timestamps differ between two fresh seeds)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("id", "product_id", "created_at",
                                                                       "next_cursor")}
        return [strip(v) for v in value] if isinstance(value, list) else value
    return [[outcome, strip(result), message] for outcome, result, message in calls]


def test_the_same_tools_answer_the_same_on_sqlite_and_postgres(caller, tmp_path):
    """The embedded setup (no DATABASE_URL, as `make run` without Postgres) runs in a subprocess of its own."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env["MCP_VAR_DIR"] = str(tmp_path)
    root = settings.BASE_DIR
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True, timeout=300)
    script = SQLITE_SCRIPT.format(calls=json.dumps(SAME_CALLS))
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    sqlite = json.loads(done.stdout.split("RESULT", 1)[1])
    assert sqlite["vendor"][0] == "sqlite" and sqlite["vendor"][1].endswith("?mode=ro")
    postgres = [[r.outcome, r.result, r.message] for r in (call(caller, n, a) for n, a in SAME_CALLS)]
    assert connections[READONLY].vendor == "postgresql"
    assert [c[0] for c in postgres] == ["ok", "ok", "ok", "invalid"]
    assert postgres[0][1]["results"] and postgres[1][1]["results"][0]["last_order"] is not None
    assert comparable(sqlite["calls"]) == comparable(postgres)


def _structured_arguments():
    """Arguments shaped like real calls, mixing ticked names with untouched ones, lookups and odd values."""
    from hypothesis import strategies as st

    from tests.fuzz.strategies import json_scalars, json_values

    names = st.sampled_from(["email", "state", "plan", "created_at", "id", "name", "order__status", "pk", ""])
    lookups = st.sampled_from(["exact", "iexact", "in", "gte", "lt", "year", "range", "regex", "isnull", "__"])
    values = st.one_of(json_scalars, st.lists(json_scalars, max_size=3), st.sampled_from(
        ["CA", "2025-01-01", "2025-01-01T00:00:00Z", "2025-02-30", 2025, 10**30, ["CA", "NY"]]))
    filters = st.dictionaries(names, st.dictionaries(lookups, values, max_size=2), max_size=3)
    orders = st.lists(st.sampled_from(["name", "-created_at", "email", "id", "-order__id", "?"]), max_size=4)
    return st.fixed_dictionaries({}, optional={
        "filter": st.one_of(filters, json_values), "order_by": st.one_of(orders, json_values),
        "page_size": st.one_of(st.integers(-5, 80), json_scalars), "cursor": st.one_of(st.text(max_size=30),
                                                                                      json_scalars),
        "aggregate": st.one_of(st.fixed_dictionaries({}, optional={
            "count": st.booleans(), "group_by": st.lists(st.sampled_from(["state", "email"]), max_size=2)}),
            json_values)})


def test_no_argument_an_agent_sends_breaks_the_tool(caller, tools):
    """Whatever the shape, a call is answered (ok) or refused (invalid): never a crash or a database error."""
    from hypothesis import HealthCheck, given, settings as hypothesis_settings

    @hypothesis_settings(max_examples=150, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(arguments=_structured_arguments())
    def check(arguments):
        for name in ("find_customers", "customers_with_last_order"):
            outcome = call(caller, name, arguments)
            assert outcome.outcome in ("ok", "invalid"), (name, arguments, outcome.outcome, outcome.message)

    check()
