"""What an administrator must see on the admin index: no worker for tools that need one, no read-only SQL role."""
from django.conf import settings
from django.db import DatabaseError
import redis

from .services.readonly_role import readonly_role_problem
from .worker_heartbeat import tools_needing_worker, workers_alive, workers_expected


def admin_warnings() -> list[str]:
    """Problems an administrator must see on the admin index: no worker for tools that need one, no SQL role."""
    found = []
    if workers_expected():
        try:
            alive = workers_alive()
        except redis.RedisError:
            alive = None  # Redis down: readiness reports it; say nothing about workers we cannot see
        if alive == []:
            tools = tools_needing_worker()
            if tools:
                shown = ", ".join(tools[:8]) + (", ..." if len(tools) > 8 else "")
                found.append(f"No Celery worker has reported in the last {settings.MCP_WORKER_STALE_S}s. "
                             f"Calls to {shown} are accepted and queued, but nothing runs them until a worker "
                             "is started (`celery -A mcp_project worker`, the Procfile's worker).")
    try:
        problem = readonly_role_problem()
    except DatabaseError:
        problem = None
    if problem:
        found.append(problem)
    return found
