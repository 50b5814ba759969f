"""Celery worker heartbeats in Redis, so the web tier can tell whether any worker is alive.

Each worker process (the main process of ``celery worker``) writes its node name and the current
time into one Redis sorted set every ``MCP_WORKER_HEARTBEAT_S`` seconds, from a daemon thread
started on Celery's ``worker_ready`` signal; it removes itself on ``worker_shutdown``. Readers ask
Redis one cheap question (``ZCOUNT`` over the last ``MCP_WORKER_STALE_S`` seconds) instead of
broadcasting a ``ping`` to the fleet and waiting for replies on every probe.

A worker killed without warning simply stops refreshing its entry and ages out.
"""
from __future__ import annotations

import logging
import threading
import time

from celery import signals
from django.conf import settings
from django.db.models import Q
import redis

logger = logging.getLogger("mcp_tools.worker_heartbeat")

KEY = "mcp:workers:heartbeat"
_stop = threading.Event()
_node: dict[str, str] = {}


def _client() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url:
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)


def worker_heartbeat_write(*, node: str, client: redis.Redis | None = None) -> None:
    """Record that ``node`` is alive now; drop entries older than a day (nodes renamed or gone)."""
    client = client or _client()
    if client is None:
        return
    now = time.time()
    with client.pipeline(transaction=False) as pipe:
        pipe.zadd(KEY, {node: now})
        pipe.zremrangebyscore(KEY, "-inf", now - 86400)
        pipe.execute()


def worker_heartbeat_remove(*, node: str) -> None:
    client = _client()
    if client is not None:
        client.zrem(KEY, node)


def workers_alive(*, within_s: float | None = None, client: redis.Redis | None = None) -> list[str]:
    """Node names of the workers that wrote a heartbeat in the last ``within_s`` seconds.

    Raises redis.RedisError when Redis cannot be asked. Returns [] when REDIS_URL is unset.
    """
    client = client or _client()
    if client is None:
        return []
    within_s = settings.MCP_WORKER_STALE_S if within_s is None else within_s
    names = client.zrangebyscore(KEY, time.time() - within_s, "+inf")
    return sorted(name.decode() if isinstance(name, bytes) else name for name in names)


def workers_expected() -> bool:
    """True when calls are queued for Celery workers (not run in-process), so a missing worker matters."""
    return not settings.CELERY_EMBEDDED


def tools_needing_worker() -> list[str]:
    """Names of enabled tools that rely on a Celery worker: async execution, or a kind that queues work."""
    from .kinds.base import get_kind_names_needing_worker
    from .models import Tool

    kinds = get_kind_names_needing_worker()
    tools = Tool.objects.filter(enabled=True).filter(
        Q(execution=Tool.Execution.ASYNC) | Q(kind__in=kinds)).order_by("name")
    return list(tools.values_list("name", flat=True))


def _beat(node: str) -> None:
    client = _client()
    while not _stop.is_set():
        try:
            worker_heartbeat_write(node=node, client=client)
        except redis.RedisError as exc:  # Redis down: the web tier sees no heartbeat, which is the truth
            logger.warning("Worker heartbeat not written: %s", exc)
        _stop.wait(settings.MCP_WORKER_HEARTBEAT_S)


@signals.worker_ready.connect
def _start(sender=None, **kwargs):
    node = getattr(sender, "hostname", None) or "worker"
    _node["name"] = node
    _stop.clear()
    threading.Thread(target=_beat, args=(node,), name="mcp-worker-heartbeat", daemon=True).start()


@signals.worker_shutdown.connect
def _stop_beating(sender=None, **kwargs):
    _stop.set()
    node = _node.pop("name", None)
    if node:
        try:
            worker_heartbeat_remove(node=node)
        except redis.RedisError:
            pass
