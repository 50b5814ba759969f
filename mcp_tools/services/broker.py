"""Is the Celery broker reachable right now?

Work that a worker must do (notifications, async tool runs) is accepted only
when the broker answers, so an agent gets a clear "temporarily unavailable"
instead of a promise nobody will keep. One client is kept per process and
reconnects by itself when the broker comes back: no restart is needed.
"""
import logging
import time

from celery import current_app
from django.conf import settings
from ..exceptions import ServiceUnavailable
from ..redis_client import redis_address, redis_check_breaker, redis_client, redis_failure_record

logger = logging.getLogger("mcp_tools.broker")

# Seconds a check of a non-Redis broker may take before it counts as down (Redis: redis_client's timeouts).
CHECK_TIMEOUT_S = 1.0
RETRY_AFTER_S = 30


def broker_is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


def _ping(url: str) -> None:
    if broker_is_redis(url):
        redis_client(url).ping()
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


def broker_publish(publish, *, what: str) -> bool:
    """Call ``publish()`` (an ``apply_async``) unless the broker is known to be down; never raises.

    For publishes whose row is already committed (the transactional outbox): a failure is
    logged and the sweeper or the next attempt delivers it. Returns whether it was published.
    A Redis broker that fails is remembered by the circuit breaker (mcp_tools/redis_client.py),
    so an outage costs one timeout per interval, not one per publish.
    """
    url = settings.CELERY_BROKER_URL
    is_redis = not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) and broker_is_redis(url)
    started = time.monotonic()
    try:
        if is_redis:
            redis_check_breaker(redis_address(url))
        publish()
    except Exception as exc:  # broker down or hung: the row is durable, delivery happens later
        if is_redis:
            redis_failure_record(redis_address(url), elapsed_s=time.monotonic() - started)
        logger.warning("Could not publish %s (%s: %s); it will be enqueued again later.", what,
                       type(exc).__name__, exc)
        return False
    return True
