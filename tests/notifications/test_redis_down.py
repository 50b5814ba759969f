"""Redis stopped under a live gunicorn: what still works, what is refused cleanly, and recovery without restart.

Two set-ups: Redis as broker *and* cache (one REDIS_URL, the default deployment), and
Redis as broker only (the cache elsewhere), which isolates the broker check.
"""
import os
import subprocess
import sys
import tempfile

from django.conf import settings
import httpx
import pytest
import redis as redis_lib

from demo_company.seed import seed_company, seed_tools
from mcp_tools.models import AuditEvent, Tool, ToolTask
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save
from notifications.models import Notification
from tests.helpers import free_port, wait_until
from tickets.models import Ticket

from .support import REPO, RedisServer, WorkerProcess, worker_database_url

pytestmark = pytest.mark.worker


@pytest.fixture
def private_redis():
    server = RedisServer().start()
    yield server
    server.cleanup()


def _start_web(env_overrides):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-redis-down-", suffix=".log", delete=False)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": worker_database_url(),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="prom-"), **env_overrides}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "mcp_project.wsgi"], cwd=REPO, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def up():
        try:
            return client.get("/health").status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None
    wait_until(up, timeout=60)
    assert process.poll() is None, f"gunicorn exited; see {log.name}"
    return process, client


@pytest.fixture
def web(transactional_db):
    started = []

    def start(**env):
        started.append(_start_web(env))
        return started[-1][1]
    yield start
    for process, client in started:
        client.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def setup_data(transactional_db):
    seed_company()
    seed_tools("http://127.0.0.1:9")
    tool_save(tool=Tool(name="async_echo", description="Echo, on a worker", kind="echo",
                        execution=Tool.Execution.ASYNC, input_schema={"type": "object"}))
    return {"Authorization": f"Bearer {token_issue(name='ops', all_tools=True).secret}"}


def _invoker(client, headers):
    def invoke(name, arguments):
        return client.post("/mcp/v1/tools/invoke", json={"name": name, "arguments": arguments}, headers=headers)
    return invoke


NOTIFY = {"user_id": "ops@example.com", "message": "Deploy finished"}


def _assert_queued_work_refused(invoke, expected_error):
    notifications_before, tasks_before = Notification.objects.count(), ToolTask.objects.count()
    refused = invoke("send_notification", NOTIFY)
    assert refused.status_code == 503, refused.text
    assert refused.json()["success"] is False and expected_error in refused.json()["error"]
    refused_task = invoke("async_echo", {"n": 2})
    assert refused_task.status_code == 503 and "temporarily unavailable" in refused_task.json()["error"]
    # Nothing half-written: no notification row, no task row; only the audit trail of the refusals.
    assert Notification.objects.count() == notifications_before
    assert ToolTask.objects.count() == tasks_before
    assert AuditEvent.objects.filter(outcome="internal_error", tool_name__in=["send_notification", "async_echo"],
                                     error_code="unavailable").count() == 2
    return refused


def _assert_recovered_and_delivered(invoke, client, headers, broker_url, smtp_sink):
    accepted = invoke("send_notification", {"user_id": "ops@example.com", "message": "Back again"})
    assert accepted.status_code == 200, accepted.text
    pk = accepted.json()["result"]["notification_id"]
    queued = invoke("async_echo", {"n": 3})
    assert queued.status_code == 202, queued.text
    assert redis_lib.Redis.from_url(broker_url).llen("celery") == 2  # both messages reached the broker
    worker = WorkerProcess(broker_url=broker_url, database_url=worker_database_url(),
                           settings_module="tests.settings",
                           extra_env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_sink.port),
                                      "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"})
    try:
        worker.wait_ready()
        wait_until(lambda: Notification.objects.get(pk=pk).status == "sent", timeout=30)
        status_url = queued.json()["status_url"]
        wait_until(lambda: client.get(status_url, headers=headers).json()["status"] == "completed", timeout=30)
        assert client.get(status_url, headers=headers).json()["result"] == {"echo": {"n": 3}}
    finally:
        worker.stop()


def test_broker_down_refuses_queued_work_while_sync_tools_work(private_redis, web, setup_data, smtp_sink):
    """Broker on the private redis-server, cache on the machine's Redis: only the broker goes away."""
    client = web(REDIS_URL=settings.REDIS_URL, CELERY_BROKER_URL=private_redis.url)
    invoke = _invoker(client, setup_data)
    assert invoke("send_notification", NOTIFY).status_code == 200
    assert invoke("async_echo", {"n": 1}).status_code == 202

    private_redis.stop()
    created = invoke("create_ticket", {"title": "Printer on fire", "description": "Third floor"})
    assert created.status_code == 200 and created.json()["success"] is True, created.text
    assert Ticket.objects.filter(title="Printer on fire").count() == 1
    refused = _assert_queued_work_refused(invoke, "Sending notifications is temporarily unavailable")
    assert refused.headers["Retry-After"] == "30"

    private_redis.start()  # same port; the web process is not restarted
    _assert_recovered_and_delivered(invoke, client, setup_data, private_redis.url, smtp_sink)


def test_redis_down_as_broker_and_cache_and_recovery_without_restart(private_redis, web, setup_data, smtp_sink):
    """One REDIS_URL for broker and cache (the default deployment), and that Redis stops."""
    client = web(REDIS_URL=private_redis.url, CELERY_BROKER_URL="")
    invoke = _invoker(client, setup_data)
    ticket_id = invoke("create_ticket", {"title": "Existing", "description": "d"}).json()["result"]["id"]
    assert invoke("send_notification", NOTIFY).status_code == 200

    private_redis.stop()
    # Synchronous read tools need only Postgres and keep working.
    assert client.get("/mcp/v1/tools", headers=setup_data).status_code == 200
    listed = invoke("list_tickets", {"status": "open"})
    assert listed.status_code == 200 and listed.json()["result"]["count"] == 1, listed.text
    assert invoke("get_ticket", {"ticket_id": ticket_id}).json()["result"]["title"] == "Existing"
    # Synchronous tools that add rows (not destructive) keep working on Postgres alone
    # (mcp_tools/services/ratelimit.py fails closed only for destructive tools).
    created = invoke("create_ticket", {"title": "Printer on fire", "description": "Third floor"})
    assert created.status_code == 200, created.text
    assert Ticket.objects.filter(title="Printer on fire").count() == 1
    _assert_queued_work_refused(invoke, "temporarily unavailable")

    private_redis.start()  # same port; the web process is not restarted
    assert invoke("create_ticket", {"title": "Second", "description": "After recovery"}).status_code == 200
    _assert_recovered_and_delivered(invoke, client, setup_data, private_redis.url, smtp_sink)
