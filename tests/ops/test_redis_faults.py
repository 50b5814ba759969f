"""A hung (SIGSTOP) or dead (SIGKILL) Redis under a live gunicorn: every call is answered within a bound the
configured timeouts set, an outage costs one timeout per breaker interval, and nothing is lost or done twice.

Redis is a private redis-server used as cache, rate-limit store, lookup-cache bus and broker at once (one
REDIS_URL, the default deployment). It is always continued and stopped in a ``finally``.
"""
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import pytest
import redis as redis_lib

from demo_company.seed import seed_company, seed_tools
from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save
from notifications.models import Notification
from tests.helpers import free_port, wait_until
from tests.notifications.support import REPO, worker_database_url
from tickets.models import Ticket

pytestmark = pytest.mark.worker

CONNECT_TIMEOUT_MS = 500
SOCKET_TIMEOUT_MS = 500
DOWN_S = 3
# A call meets at most one slow Redis failure before the breaker opens (all of a process's clients share it);
# allow two (a breaker interval can end during a call) of connect + socket timeout each, and 1.5 s of slack for
# the server's own work on a shared machine. The reported fault took 5 s per call and 20 s per notification.
CALL_BOUND_S = 2 * (CONNECT_TIMEOUT_MS + SOCKET_TIMEOUT_MS) / 1000 + 1.5
SLOW_S = 0.8 * SOCKET_TIMEOUT_MS / 1000  # a call this slow paid a Redis timeout


@pytest.fixture
def web(transactional_db, private_redis):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-redis-faults-", suffix=".log", delete=False)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": worker_database_url(),
           "REDIS_URL": private_redis.url, "CELERY_BROKER_URL": "", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(),
           "MCP_REDIS_CONNECT_TIMEOUT_MS": str(CONNECT_TIMEOUT_MS),
           "MCP_REDIS_SOCKET_TIMEOUT_MS": str(SOCKET_TIMEOUT_MS), "MCP_REDIS_DOWN_S": str(DOWN_S)}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "mcp_project.wsgi"], cwd=REPO, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        def up():
            try:
                return client.get("/health").status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None
        wait_until(up, timeout=60)
        assert process.poll() is None, f"gunicorn exited; see {log.name}"
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def headers(transactional_db):
    seed_company()
    seed_tools("http://127.0.0.1:9")
    tool_save(tool=Tool(name="async_echo", description="Echo, on a worker", kind="echo",
                        execution=Tool.Execution.ASYNC, input_schema={"type": "object"}))
    # Neither read-only nor marked non-destructive: destructive in MCP's terms.
    tool_save(tool=Tool(name="overwrite", description="Writes", kind="echo", input_schema={"type": "object"}))
    return {"Authorization": f"Bearer {token_issue(name='ops', all_tools=True).secret}"}


def _calls(headers, ticket_id):
    """One round of what agents and operators do: reads, additive and destructive writes, queued work."""
    def invoke(name, arguments):
        return ("POST", "/mcp/v1/tools/invoke", {"name": name, "arguments": arguments})
    return [
        ("health", ("GET", "/health", None)),
        ("list", ("GET", "/mcp/v1/tools", None)),
        ("list_tickets", invoke("list_tickets", {"status": "open"})),
        ("create_ticket", invoke("create_ticket", {"title": "During the outage", "description": "d"})),
        ("update_ticket", invoke("update_ticket", {"ticket_id": ticket_id, "status": "in_progress"})),
        ("overwrite", invoke("overwrite", {"n": 1})),
        ("send_notification", invoke("send_notification", {"user_id": "ops@example.com", "message": "m"})),
        ("async_echo", invoke("async_echo", {"n": 1})),
    ]


def _timed(client, headers, request):
    method, path, body = request
    started = time.monotonic()
    response = client.request(method, path, json=body, headers=headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize("fault", ["frozen", "killed"])
def test_a_hung_or_dead_redis_costs_bounded_time_and_loses_nothing(fault, private_redis, web, headers, capsys):
    ticket_id = web.post("/mcp/v1/tools/invoke", headers=headers, json={
        "name": "create_ticket", "arguments": {"title": "Existing", "description": "d"}}).json()["result"]["id"]
    before = web.post("/mcp/v1/tools/invoke", headers=headers, json={
        "name": "send_notification", "arguments": {"user_id": "ops@example.com", "message": "Before"}})
    assert before.status_code == 200, before.text
    for _name, request in _calls(headers, ticket_id):  # warm every pooled connection while Redis answers
        _timed(web, headers, request)
    audit_before = AuditEvent.objects.count()
    tickets_before = Ticket.objects.filter(title="During the outage").count()
    notifications_before = Notification.objects.count()

    # /health from another client all along: it must never wait on Redis, whatever holds the other threads.
    health, stop = [], threading.Event()

    def poll_health():
        with httpx.Client(base_url=str(web.base_url), timeout=60) as other:
            while not stop.is_set():
                started = time.monotonic()
                health.append((other.get("/health").status_code, time.monotonic() - started))
                stop.wait(0.2)

    results = []
    poller = threading.Thread(target=poll_health, daemon=True)
    try:
        private_redis.freeze() if fault == "frozen" else private_redis.kill()
        fault_started = time.monotonic()
        poller.start()
        while time.monotonic() - fault_started < 3 * DOWN_S:
            for name, request in _calls(headers, ticket_id):
                response, seconds = _timed(web, headers, request)
                results.append((name, response.status_code, seconds, response.text))
        fault_s = time.monotonic() - fault_started
    finally:
        stop.set()
        poller.join(timeout=60)
        if fault == "frozen":
            private_redis.thaw()
        else:
            private_redis.start()  # the same port; the server is not restarted

    longest = max(results, key=lambda r: r[2])
    slow = [r for r in results if r[2] >= SLOW_S]
    with capsys.disabled():
        print(f"\n[{fault} Redis] {len(results)} calls in {fault_s:.1f}s; longest {longest[2]:.3f}s ({longest[0]}); "
              f"{len(slow)} paid a timeout; /health longest {max(s for _c, s in health):.3f}s over {len(health)}")
    # Bounded latency, one timeout per breaker interval (per process), not one per call.
    assert longest[2] < CALL_BOUND_S, longest
    assert len(slow) <= math.ceil(fault_s / DOWN_S) + 1, slow
    assert health and all(code == 200 for code, _s in health) and max(s for _c, s in health) < 1.0
    # No 5xx beyond a clear 503; reads and additive writes keep working on Postgres alone.
    by_name = {}
    for name, status, _seconds, text in results:
        by_name.setdefault(name, set()).add(status)
        assert status < 500 or (status == 503 and "temporarily unavailable" in text), (name, status, text)
    assert by_name["health"] == by_name["list"] == by_name["list_tickets"] == {200}, by_name
    assert by_name["create_ticket"] == by_name["update_ticket"] == {200}, by_name  # additive writes fail open
    assert by_name["overwrite"] == by_name["send_notification"] == by_name["async_echo"] == {503}, by_name
    # Nothing done twice, nothing half-done: one ticket per success, no notification rows for refusals,
    # one audit row per answered tool call.
    created = sum(1 for name, status, *_ in results if name == "create_ticket" and status == 200)
    assert Ticket.objects.filter(title="During the outage").count() - tickets_before == created
    assert Notification.objects.count() == notifications_before
    invokes = sum(1 for name, *_ in results if name not in ("health", "list"))
    assert AuditEvent.objects.count() - audit_before == invokes

    # Back within one breaker interval, without a restart; the notification from before was not lost.
    def accepted():
        response = web.post("/mcp/v1/tools/invoke", headers=headers, json={
            "name": "send_notification", "arguments": {"user_id": "ops@example.com", "message": "After"}})
        return response if response.status_code == 200 else None
    after = wait_until(accepted, timeout=DOWN_S + 10, interval=0.5)
    assert Notification.objects.filter(message="After").count() == 1
    assert Notification.objects.get(pk=before.json()["result"]["notification_id"]).status == "queued"
    if fault == "frozen":  # the broker kept its data: each accepted notification published exactly once
        messages = redis_lib.Redis.from_url(private_redis.url).lrange("celery", 0, -1)
        ids = [m for m in messages if b"deliver_notification" in m]
        assert len(ids) == 2 + 1, len(ids)  # the warm-up round's, "Before" and "After"
    assert after.json()["result"]["notification_id"] != before.json()["result"]["notification_id"]
