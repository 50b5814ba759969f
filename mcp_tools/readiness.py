"""Readiness checks: can this process serve traffic right now?

Two kinds. *Blocking* checks (database, Redis, broker, migrations) decide the HTTP status: without
them this web process cannot answer, so the orchestrator should route around it. *Advisory* checks
(Celery workers alive, the read-only SQL role) are reported in the same JSON but never turn it into a
503: they fail the same way for every web process, so taking web pods out of service would turn a
partial outage (async calls wait in the queue; sql_query tools answer "unavailable") into a total one.
"""
import logging

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
import redis

from .redis_client import redis_client

logger = logging.getLogger("mcp_tools.readiness")

_TIMEOUT_S = 2.0  # for a broker that is not Redis
_migrations_applied = False  # once true for this process, stays true


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis(url: str) -> None:
    if url.split("://", 1)[0] in ("redis", "rediss", "unix"):
        redis_client(url).ping()
        return
    from kombu import Connection  # another broker (e.g. amqp): let kombu try it once

    with Connection(url, connect_timeout=_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1)


def check_migrations() -> None:
    global _migrations_applied
    if _migrations_applied:
        return
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} unapplied migration(s): {names}")
    _migrations_applied = True


def advisory_checks() -> dict[str, str]:
    """{check name: "ok" or "warning: <what is wrong and what to do>"}; never blocks readiness."""
    from .services.readonly_role import readonly_role_problem
    from .worker_heartbeat import workers_alive, workers_expected

    results = {}
    if workers_expected() and settings.REDIS_URL:
        try:
            alive = workers_alive()
        except redis.RedisError as exc:
            logger.warning("Worker heartbeat check failed: %s", exc)
            results["workers"] = "unknown: Redis unavailable"
        else:
            results["workers"] = "ok" if alive else (
                f"warning: no Celery worker has reported in the last {settings.MCP_WORKER_STALE_S}s; async tool "
                "calls and notifications are queued until a worker runs")
    try:
        problem = readonly_role_problem()
    except Exception as exc:  # the database check reports the outage itself
        logger.warning("Read-only role check failed: %s", exc)
        problem = None
    else:
        if connection.vendor == "postgresql":
            results["readonly_role"] = "ok" if problem is None else f"warning: {problem}"
    return results


def readiness_checks() -> dict[str, str]:
    """{check name: "ok" or "failed: <ExceptionClass>"}; details go to the log, not to the caller."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = lambda: check_redis(settings.REDIS_URL)
    if settings.CELERY_BROKER_URL and settings.CELERY_BROKER_URL != settings.REDIS_URL:
        checks["broker"] = lambda: check_redis(settings.CELERY_BROKER_URL)
    checks["migrations"] = check_migrations
    results = {}
    for name, check in checks.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "skipped: database unavailable"
            continue
        try:
            check()
        except Exception as exc:
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = f"failed: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results
