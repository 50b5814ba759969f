"""The web tier notices a dead worker fleet and a missing read-only role, and says what to do.

Worker liveness comes from heartbeats the workers write into Redis (mcp_tools/worker_heartbeat.py);
these tests point the readers at a key of their own, so a worker another test started does not
answer for them, and check the writer with a real worker separately.
"""
import io
import os
from pathlib import Path
import subprocess
import sys
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
import pytest

from mcp_tools import checks, worker_heartbeat
from mcp_tools.models import Tool
from mcp_tools.services.invocation import tool_invoke
from mcp_tools.services.principals import Caller
from mcp_tools.services.tools import tool_save
from mcp_tools.services.tokens import token_issue
from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
ALIAS = settings.MCP_SQL_READONLY_ALIAS
MISSING_ROLE = "mcp_readonly_missing_for_test"


@pytest.fixture
def role_missing(monkeypatch):
    """The read-only alias configured for a role that does not exist (as after a bare `migrate`)."""
    monkeypatch.setitem(settings.DATABASES, ALIAS, {**settings.DATABASES[ALIAS], "USER": MISSING_ROLE})
    connection = connections[ALIAS]
    connection.close()
    monkeypatch.setattr(connection, "settings_dict", {**connection.settings_dict, "USER": MISSING_ROLE})
    yield
    connection.close()


@pytest.fixture
def notify_tool(transactional_db):
    return tool_save(tool=Tool(name="notify", description="Send a notification", kind="send_notification",
                               config={"channel": "email"}, input_schema={"type": "object"}))


def test_readiness_reports_a_dead_worker_fleet_without_going_unready(api, transactional_db, heartbeat_key):
    response = api.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["workers"].startswith("warning: no Celery worker has reported in the last")
    assert body["warnings"] == ["workers"]
    assert "failed" not in body


def test_readiness_reports_a_live_worker(api, transactional_db, heartbeat_key):
    worker_heartbeat.worker_heartbeat_write(node="celery@test")
    body = api.get("/health/ready").json()
    assert body["checks"]["workers"] == "ok"
    assert "warnings" not in body


def test_a_stale_heartbeat_counts_as_dead(api, transactional_db, heartbeat_key, settings):
    worker_heartbeat._client().zadd(heartbeat_key, {"celery@old": 1.0})  # 1970
    assert worker_heartbeat.workers_alive() == []
    assert api.get("/health/ready").json()["warnings"] == ["workers"]


@pytest.mark.worker
def test_a_real_worker_writes_heartbeats(celery_worker):
    assert wait_until(lambda: celery_worker.node in worker_heartbeat.workers_alive(), timeout=30)


def _admin_index(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_admin_warns_when_tools_need_a_worker_and_none_is_alive(client, notify_tool, heartbeat_key):
    page = _admin_index(client)
    assert "No Celery worker has reported" in page
    assert "notify" in page


def test_admin_is_quiet_when_a_worker_is_alive(client, notify_tool, heartbeat_key):
    worker_heartbeat.worker_heartbeat_write(node="celery@test")
    assert "No Celery worker has reported" not in _admin_index(client)


def test_admin_is_quiet_when_no_tool_needs_a_worker(client, transactional_db, heartbeat_key):
    tool_save(tool=Tool(name="echo_now", description="Echo", kind="echo", input_schema={"type": "object"}))
    assert "No Celery worker has reported" not in _admin_index(client)


def test_an_async_tool_counts_as_needing_a_worker(transactional_db):
    tool_save(tool=Tool(name="echo_later", description="Echo", kind="echo", execution=Tool.Execution.ASYNC,
                        input_schema={"type": "object"}))
    tool_save(tool=Tool(name="echo_now", description="Echo", kind="echo", input_schema={"type": "object"}))
    assert worker_heartbeat.tools_needing_worker() == ["echo_later"]


# --- the read-only role -------------------------------------------------------------------------------


def test_a_missing_role_gives_the_sql_tool_caller_an_actionable_answer(transactional_db, role_missing):
    tool = tool_save(tool=Tool(name="db_query", description="SQL", kind="sql_query",
                               input_schema={"type": "object", "properties": {"query": {"type": "string"}}},
                               config={"allowed_tables": ["users"], "max_rows": 10}))
    token = token_issue(name="t", all_tools=True)
    result = tool_invoke(name=tool.name, arguments={"query": "SELECT 1 AS one"},
                         caller=Caller(token=token.token, transport="rest"))
    assert result.error_code == "unavailable"
    assert f"'{MISSING_ROLE}'" in result.message and "does not exist" in result.message
    assert "python manage.py setup_readonly_role" in result.message
    assert "Internal error" not in result.message


def test_a_present_role_answers_the_same_query(transactional_db):
    tool = tool_save(tool=Tool(name="db_query", description="SQL", kind="sql_query",
                               input_schema={"type": "object", "properties": {"query": {"type": "string"}}},
                               config={"allowed_tables": ["users"], "max_rows": 10}))
    token = token_issue(name="t", all_tools=True)
    result = tool_invoke(name=tool.name, arguments={"query": "SELECT 1 AS one"},
                         caller=Caller(token=token.token, transport="rest"))
    assert result.ok, result.message
    assert result.result["rows"] == [{"one": 1}]


def test_readiness_names_a_missing_role_but_stays_ready(api, transactional_db, role_missing, heartbeat_key):
    worker_heartbeat.worker_heartbeat_write(node="celery@test")
    response = api.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["readonly_role"].startswith(f"warning: The read-only database role '{MISSING_ROLE}'")
    assert "setup_readonly_role" in body["checks"]["readonly_role"]
    assert body["warnings"] == ["readonly_role"]


def test_readiness_says_ok_for_the_role_when_it_exists(api, transactional_db):
    assert api.get("/health/ready").json()["checks"]["readonly_role"] == "ok"


def test_system_check_warns_about_a_missing_role(db, role_missing):
    found = checks.check_readonly_role()
    assert [w.id for w in found] == ["mcp_tools.W001"]
    assert MISSING_ROLE in found[0].msg and "python manage.py setup_readonly_role" in found[0].msg


def test_system_check_is_silent_when_the_role_exists(db):
    assert checks.check_readonly_role() == []


def test_admin_shows_a_missing_role(client, transactional_db, role_missing):
    assert f"The read-only database role &#x27;{MISSING_ROLE}&#x27;" in _admin_index(client)


def test_migrate_creates_the_role_when_it_may(transactional_db, monkeypatch):
    role = f"mcp_ro_migrate_{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(settings.DATABASES, ALIAS, {**settings.DATABASES[ALIAS], "USER": role})
    out = io.StringIO()
    try:
        call_command("migrate", verbosity=1, stdout=out)
        assert f"Read-only role '{role}' is set up" in out.getvalue()
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", [role])
            assert cursor.fetchone() == (True, False)
            cursor.execute("SELECT has_table_privilege(%s, 'users', 'SELECT'), "
                           "has_table_privilege(%s, 'users', 'INSERT')", [role, role])
            assert cursor.fetchone() == (True, False)
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_migrate_warns_when_its_user_may_not_create_roles(transactional_db):
    """`migrate` run by a database user without CREATEROLE (as many managed databases give): a warning, exit 0."""
    user = f"mcp_app_{uuid.uuid4().hex[:8]}"
    db = connections["default"].settings_dict
    with connections["default"].cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{user}" LOGIN NOSUPERUSER NOCREATEROLE')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{user}"')
        cursor.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{user}"')
    try:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
               "DATABASE_URL": f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        role = settings.DATABASES[ALIAS]["USER"]
        assert f"WARNING: the read-only role '{role}' could not be set up (" in result.stdout, result.stdout
        assert "python manage.py setup_readonly_role" in result.stdout
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{user}"')
            cursor.execute(f'DROP ROLE "{user}"')
