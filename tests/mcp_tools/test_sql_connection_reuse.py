"""The read-only alias keeps its connection between sql_query calls, and nothing a call does outlives it."""
from django.conf import settings
from django.db import connections
import pytest

from demo_company.seed import seed_company
from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.sql_query import sql_execute

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "tools_readonly"])

READONLY = "tools_readonly"


def backend_pid() -> int:
    return sql_execute(alias=READONLY, sql="SELECT pg_backend_pid() AS pid", timeout_s=5, max_rows=1)["rows"][0]["pid"]


def session_setting(name: str) -> str:
    with connections[READONLY].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def test_the_alias_is_configured_to_reuse_connections_with_health_checks():
    config = settings.DATABASES[READONLY]
    assert config["CONN_MAX_AGE"] > 0 and config["CONN_HEALTH_CHECKS"] is True


def test_consecutive_calls_share_one_connection():
    seed_company()
    assert backend_pid() == backend_pid()


def test_per_call_timeouts_do_not_stay_on_the_session():
    role_default = session_setting("statement_timeout")
    sql_execute(alias=READONLY, sql="SELECT 1 AS one", timeout_s=0.25, max_rows=1)
    assert session_setting("statement_timeout") == role_default
    assert session_setting("lock_timeout") != "250ms"


def test_session_settings_changed_by_unchecked_sql_are_reset():
    role_default = session_setting("statement_timeout")
    pid = backend_pid()
    try:
        sql_execute(alias=READONLY, sql="COMMIT; SET statement_timeout = 0; SET default_transaction_read_only = off; "
                                        "SELECT 1 AS one", timeout_s=5, max_rows=1)
    except ToolError:
        pass
    # Still read-only with the role's timeout, on the same connection or a fresh one.
    assert session_setting("default_transaction_read_only") == "on"
    assert session_setting("statement_timeout") == role_default
    assert backend_pid() in {pid, backend_pid()}
