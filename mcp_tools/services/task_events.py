"""Live task events between processes: a worker announces progress and status changes, a waiting request hears them.

Redis pub/sub, one channel per task. Events are hints, not records: the ToolTask row in
Postgres stays the truth, and a waiter re-reads it at least every ``FALLBACK_POLL_S``, so
a lost event (Redis restarting, a subscriber joining late) costs latency, never an answer.
Without Redis (embedded mode: eager Celery in one process) an in-process bus does the same.

Event shapes: ``{"type": "progress", "progress": p, "total": t|None, "message": m|None}``
and ``{"type": "status", "status": s}``.
"""
from __future__ import annotations

from contextlib import contextmanager
import json
import logging
import queue
import threading
from typing import Any, Iterator

from django.conf import settings

logger = logging.getLogger("mcp_tools.tasks")

FALLBACK_POLL_S = 1.0


def _channel(task_id: str) -> str:
    return f"mcp:task-events:{task_id}"


def task_event_publish(*, task_id: str, event: dict[str, Any]) -> None:
    """Announce an event; never raises (a worker must not fail a tool run because nobody could be told)."""
    try:
        _bus().publish(_channel(task_id), json.dumps(event))
    except Exception as exc:  # Redis down or restarting: the row still has the news
        logger.debug("Could not publish event for task %s: %s", task_id, exc)


class TaskEventListener:
    """Events of one task, in order, from the moment of subscription."""

    def __init__(self, source) -> None:
        self._source = source

    def next(self, *, timeout: float) -> dict[str, Any] | None:
        """The next event, or None after ``timeout`` seconds (or at once if the bus failed: poll the row)."""
        return self._source.next(timeout)


@contextmanager
def task_events_listen(*, task_id: str) -> Iterator[TaskEventListener]:
    """Subscribe before reading the row, so no event between the read and the wait is missed."""
    source = _bus().subscribe(_channel(task_id))
    try:
        yield TaskEventListener(source)
    finally:
        source.close()


# --- the two buses --------------------------------------------------------------------------------

class _RedisSubscription:
    def __init__(self, client, channel: str) -> None:
        self.pubsub = None
        try:
            self.pubsub = client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(channel)
        except Exception as exc:
            logger.debug("Could not subscribe to %s: %s", channel, exc)
            self.close()

    def next(self, timeout: float) -> dict[str, Any] | None:
        if self.pubsub is None:
            threading.Event().wait(timeout)  # no live events: the caller re-reads the row after the wait
            return None
        try:
            message = self.pubsub.get_message(timeout=timeout)
        except Exception as exc:
            logger.debug("Task event subscription lost: %s", exc)
            self.close()
            return None
        if not message or message.get("type") != "message":
            return None
        try:
            event = json.loads(message["data"])
        except (TypeError, ValueError):
            return None
        return event if isinstance(event, dict) else None

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:
                pass
            self.pubsub = None


class _RedisBus:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)

    def publish(self, channel: str, data: str) -> None:
        self.client.publish(channel, data)

    def subscribe(self, channel: str) -> _RedisSubscription:
        return _RedisSubscription(self.client, channel)


class _LocalSubscription:
    def __init__(self, bus: "_LocalBus", channel: str) -> None:
        self.bus, self.channel, self.queue = bus, channel, queue.Queue()

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return json.loads(self.queue.get(timeout=timeout))
        except queue.Empty:
            return None

    def close(self) -> None:
        with self.bus.lock:
            subscribers = self.bus.subscribers.get(self.channel, [])
            if self in subscribers:
                subscribers.remove(self)
            if not subscribers:
                self.bus.subscribers.pop(self.channel, None)


class _LocalBus:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: dict[str, list[_LocalSubscription]] = {}

    def publish(self, channel: str, data: str) -> None:
        with self.lock:
            for subscription in self.subscribers.get(channel, []):
                subscription.queue.put(data)

    def subscribe(self, channel: str) -> _LocalSubscription:
        subscription = _LocalSubscription(self, channel)
        with self.lock:
            self.subscribers.setdefault(channel, []).append(subscription)
        return subscription


_BUS = None
_BUS_LOCK = threading.Lock()


def _bus():
    global _BUS
    if _BUS is None:
        with _BUS_LOCK:
            if _BUS is None:
                _BUS = _RedisBus(settings.REDIS_URL) if settings.REDIS_URL else _LocalBus()
    return _BUS
