"""A broker that fails or hangs after the row is committed: the caller still succeeds, at once, and nothing is lost.

The publish runs in a real process (``manage.py shell``-like subprocess on the test database) whose
broker is a private redis-server that the test kills or freezes; the machine's Redis stays the cache.
"""
import json
import os
import subprocess
import sys

from django.conf import settings
from django.utils import timezone
import pytest

from notifications import services
from notifications.models import Notification

from .support import REPO, worker_database_url

SOCKET_TIMEOUT_MS = 500
CONNECT_TIMEOUT_MS = 500
# The publish tries twice (one retry replaces a dropped connection), each costing at most a connect and a
# socket timeout; a second of slack covers process noise.
PUBLISH_BOUND_S = 2 * (SOCKET_TIMEOUT_MS + CONNECT_TIMEOUT_MS) / 1000 + 1.0

SCRIPT = """
import json, sys, time
import django
django.setup()
from notifications.services import notification_queue, notifications_resend
started = time.monotonic()
queued = notification_queue(recipient="ops@example.com", message="Deploy finished")
queued_s = time.monotonic() - started
started = time.monotonic()
resent = notifications_resend(notification_ids=[int(sys.argv[1])])
resend_s = time.monotonic() - started
print(json.dumps({"id": queued.pk, "queued_s": queued_s, "resent": resent, "resend_s": resend_s}))
"""


@pytest.fixture
def broker(private_redis):
    """A private redis-server as the Celery broker (tests/conftest.py: private_redis)."""
    return private_redis


def _run_publisher(broker_url: str, failed_id: int) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": worker_database_url(),
           "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": broker_url, "LOG_FORMAT": "plain",
           "MCP_REDIS_SOCKET_TIMEOUT_MS": str(SOCKET_TIMEOUT_MS),
           "MCP_REDIS_CONNECT_TIMEOUT_MS": str(CONNECT_TIMEOUT_MS)}
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(failed_id)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("publishing to a hung broker blocked the caller for a minute")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done, (json.loads(lines[-1]) if lines else None)


def _failed_notification():
    return Notification.objects.create(recipient="old@example.com", message="Try again", status="failed",
                                       attempts=6, last_error="SMTP 451", next_attempt_at=timezone.now())


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_a_failing_publish_after_commit_neither_fails_the_caller_nor_loses_the_row(transactional_db, broker,
                                                                                   fault, monkeypatch):
    failed = _failed_notification()
    broker.kill() if fault == "killed" else broker.freeze()
    done, answer = _run_publisher(broker.url, failed.pk)
    assert done.returncode == 0 and answer is not None, done.stderr[-3000:]
    assert "AttributeError" not in done.stderr
    # Both callers got their answer within the bound the timeouts set, not after the hang.
    assert answer["queued_s"] < PUBLISH_BOUND_S and answer["resend_s"] < PUBLISH_BOUND_S, answer
    assert done.stderr.count("Could not publish notification") >= 1
    # Recorded exactly once each, still queued: the sweeper's to deliver.
    assert Notification.objects.filter(recipient="ops@example.com").count() == 1
    assert Notification.objects.get(pk=answer["id"]).status == "queued"
    failed.refresh_from_db()
    assert answer["resent"] == 1 and failed.status == "queued"
    swept = []
    monkeypatch.setattr(services, "notification_enqueue",
                        lambda *, notification_id, countdown=None: swept.append(notification_id))
    services.notifications_requeue_stale(stale_after_s=0)
    assert set(swept) >= {answer["id"], failed.pk}


def test_a_working_broker_gets_each_message_once(transactional_db, broker):
    import redis

    failed = _failed_notification()
    done, answer = _run_publisher(broker.url, failed.pk)
    assert done.returncode == 0 and answer is not None, done.stderr[-3000:]
    assert redis.Redis.from_url(broker.url).llen("celery") == 2
    assert "Could not publish" not in done.stderr
