"""Is the Celery broker reachable right now?

Work that a worker must do (notifications, async tool runs) is accepted only
when the broker answers, so an agent gets a clear "temporarily unavailable"
instead of a promise nobody will keep. One client is kept per process and
reconnects by itself when the broker comes back: no restart is needed.
"""
from functools import lru_cache
import logging

from celery import current_app
from django.conf import settings
import redis

from ..exceptions import ServiceUnavailable

logger = logging.getLogger("mcp_tools.broker")

# Seconds a check may take before the broker counts as down.
CHECK_TIMEOUT_S = 1.0
RETRY_AFTER_S = 30


@lru_cache(maxsize=1)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S)


def _ping(url: str) -> None:
    if url.startswith(("redis://", "rediss://", "unix://")):
        _redis_client(url).ping()
        return
    with current_app.pool.acquire(block=True, timeout=CHECK_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)


def broker_check(*, what: str = "This service") -> None:
    """Raise ServiceUnavailable (code 'unavailable', HTTP 503) unless the broker answers.

    In embedded mode (no broker; tasks run in-process) there is nothing to check.
    """
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return
    try:
        _ping(settings.CELERY_BROKER_URL)
    except Exception as exc:  # any failure to reach the broker means "down" to the caller
        logger.warning("Broker check failed: %s: %s", type(exc).__name__, exc)
        error = ServiceUnavailable(
            f"{what} is temporarily unavailable: the task queue cannot be reached. Nothing was recorded; "
            f"try again in about {RETRY_AFTER_S} seconds.")
        error.retry_after_s = RETRY_AFTER_S
        raise error from None
