"""Liveness and readiness probes."""
from django.test import override_settings

from mcp_tools import readiness, worker_heartbeat


def test_ready_when_database_redis_and_migrations_are_fine(api, transactional_db, heartbeat_key):
    worker_heartbeat.worker_heartbeat_write(node="celery@test")
    response = api.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready",
                               "checks": {"database": "ok", "redis": "ok", "migrations": "ok",
                                          "workers": "ok", "readonly_role": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_unreachable_redis_gives_503_naming_it(api, transactional_db):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = api.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed: ")
    assert "127.0.0.1:1" not in response.text  # details go to the log, not to the prober


def test_a_separate_broker_is_checked_too(api, transactional_db, settings):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = api.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


def test_unapplied_migrations_make_it_not_ready(api, transactional_db, monkeypatch):
    monkeypatch.setattr(readiness, "_migrations_applied", False)
    monkeypatch.setattr(readiness.MigrationExecutor, "migration_plan", lambda self, targets: [
        (type("M", (), {"app_label": "mcp_tools", "name": "0099_future"})(), False)])
    response = api.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["migrations"]


def test_liveness_does_not_touch_dependencies(api, transactional_db):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        assert api.get("/health").status_code == 200
