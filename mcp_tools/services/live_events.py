"""Live events between processes: one process announces, the requests waiting for it hear it.

Redis pub/sub. Two uses:

* task events (``task_event_publish`` / ``task_events_listen``), one channel per task: a
  worker announces progress and status changes, a ``tasks/result`` wait relays them.
  Event shapes: ``{"type": "progress", "progress": p, "total": t|None, "message": m|None}``
  and ``{"type": "status", "status": s}``. The same events, with ``"taskId"``, also go to the
  channel of the handshake session that created the task, which its GET stream hears; while
  a ``tasks/result`` wait streams a task (``task_wait_mark``), the GET stream leaves it alone,
  so a client never hears the same progress twice.
* the change feed (``change_publish`` / ``changes_listen``), one channel: an admin's change
  to tools, prompts or resources, as the MCP notification it means
  (``{"method": "notifications/tools/list_changed", "params": {...}}``), for
  ``subscriptions/listen`` streams and handshake sessions' GET streams; a session's GET stream
  also hears ``{"type": "session_ended"}`` on its own channel when the session is deleted.

Events are hints, not records: Postgres stays the truth. A task waiter re-reads its row at
least every ``FALLBACK_POLL_S``, so a lost event (Redis restarting, a subscriber joining
late) costs latency, never an answer; a listener that lost its subscription ends its stream
so the client listens again and refetches. Without Redis (embedded mode: eager Celery in one
process) an in-process bus does the same.
"""
from __future__ import annotations

from contextlib import contextmanager
import hashlib
import json
import logging
import queue
import threading
import time
from typing import Any, Iterator

from django.conf import settings
from django.db import transaction

from ..redis_client import redis_channel, redis_client

logger = logging.getLogger("mcp_tools.tasks")

FALLBACK_POLL_S = 1.0


CHANGES_CHANNEL = "mcp:changes"
# The change feed's events are the MCP notifications they mean.
TOOLS_CHANGED = "notifications/tools/list_changed"
PROMPTS_CHANGED = "notifications/prompts/list_changed"
RESOURCES_CHANGED = "notifications/resources/list_changed"
RESOURCE_UPDATED = "notifications/resources/updated"


def _task_channel(task_id: str) -> str:
    return f"mcp:task-events:{task_id}"


def _publish(channel: str, event: dict[str, Any]) -> None:
    """Announce an event; never raises (a tool run or an admin's save must not fail because nobody heard)."""
    try:
        _bus().publish(channel, json.dumps(event))
    except Exception as exc:  # Redis down or restarting: Postgres still has the news
        logger.debug("Could not publish on %s: %s", channel, exc)


class EventListener:
    """Events of one channel, in order, from the moment of subscription."""

    def __init__(self, source) -> None:
        self._source = source

    def next(self, *, timeout: float) -> dict[str, Any] | None:
        """The next event, or None after ``timeout`` seconds (or at once if the bus failed)."""
        return self._source.next(timeout)

    @property
    def lost(self) -> bool:
        """True once the subscription failed (Redis went away): events may have been missed."""
        return self._source.lost


@contextmanager
def _listen(*channels: str) -> Iterator[EventListener]:
    source = _bus().subscribe(*channels)
    try:
        yield EventListener(source)
    finally:
        source.close()


def _digest(value: str) -> str:
    # Channel names carry digests, never session ids (bearer-like secrets) or raw owner names.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def session_key(session_id: str) -> str:
    """What identifies a session on the bus and on its tasks: a digest, never the id itself."""
    return _digest(session_id)


def task_event_publish(*, task_id: str, event: dict[str, Any], session: str = "") -> None:
    """To the task's waiters and (``session``: its session key) to the GET stream of the session that made it."""
    _publish(_task_channel(task_id), event)
    if session:
        _publish(_SESSION_PREFIX + session, {**event, "taskId": task_id})


_WAIT_MARK_S = 5


def task_wait_mark(*, task_id: str) -> None:
    """A tasks/result wait is streaming this task's events now (renew at least every few seconds)."""
    try:
        _bus().mark(f"mcp:task-waiting:{task_id}", _WAIT_MARK_S)
    except Exception as exc:
        logger.debug("Could not mark task %s as waited on: %s", task_id, exc)


def task_wait_marked(*, task_id: str) -> bool:
    try:
        return _bus().marked(f"mcp:task-waiting:{task_id}")
    except Exception:
        return False


def task_events_listen(*, task_id: str):
    """Subscribe before reading the row, so no event between the read and the wait is missed."""
    return _listen(_task_channel(task_id))


def change_publish(*, method: str, params: dict[str, Any] | None = None) -> None:
    _publish(CHANGES_CHANNEL, {"method": method, "params": params or {}})


def change_announce(*, method: str, params: dict[str, Any] | None = None) -> None:
    """Publish once the current transaction commits, so a client refetching on the news sees the change."""
    # _publish never raises, so the hook needs no robust=True (whose error logging cannot name a partial).
    transaction.on_commit(lambda: change_publish(method=method, params=params))


def changes_listen():
    return _listen(CHANGES_CHANNEL)


_SESSION_PREFIX = "mcp:session-events:"


def _session_channel(session_id: str) -> str:
    return _SESSION_PREFIX + session_key(session_id)


def session_ended_publish(*, session_id: str) -> None:
    _publish(_session_channel(session_id), {"type": "session_ended"})


def session_stream_listen(*, session_id: str):
    """The change feed plus this session's own events (its end, its tasks), in one subscription."""
    return _listen(CHANGES_CHANNEL, _session_channel(session_id))


# --- the two buses --------------------------------------------------------------------------------

class _RedisSubscription:
    def __init__(self, client, channels: tuple[str, ...]) -> None:
        self.pubsub = None
        self.lost = False
        try:
            self.pubsub = client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(*channels)
        except Exception as exc:
            logger.debug("Could not subscribe to %s: %s", channels, exc)
            self.lost = True
            self.close()

    def next(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self.pubsub is None:
                threading.Event().wait(max(remaining, 0))  # no live events: the caller re-reads the row after
                return None
            if remaining <= 0:
                return None
            try:
                # Returns early (None) when it read a subscribe confirmation: keep waiting until the deadline.
                message = self.pubsub.get_message(timeout=remaining)
            except Exception as exc:
                logger.debug("Event subscription lost: %s", exc)
                self.lost = True
                self.close()
                return None
            if not message or message.get("type") != "message":
                continue
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if isinstance(event, dict):
                return event

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:
                pass
            self.pubsub = None


class _RedisBus:
    def __init__(self, url: str) -> None:
        # Subscribers wait in get_message(timeout=...), which polls; the socket timeout bounds each read.
        self.client = redis_client(url)

    def publish(self, channel: str, data: str) -> None:
        self.client.publish(redis_channel(channel), data)

    def mark(self, key: str, ttl_s: int) -> None:
        self.client.set(key, "1", ex=ttl_s)

    def marked(self, key: str) -> bool:
        return bool(self.client.exists(key))

    def subscribe(self, *channels: str) -> _RedisSubscription:
        return _RedisSubscription(self.client, tuple(redis_channel(name) for name in channels))


class _LocalSubscription:
    lost = False

    def __init__(self, bus: "_LocalBus", channels: tuple[str, ...]) -> None:
        self.bus, self.channels, self.queue = bus, channels, queue.Queue()

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return json.loads(self.queue.get(timeout=timeout))
        except queue.Empty:
            return None

    def close(self) -> None:
        with self.bus.lock:
            for channel in self.channels:
                subscribers = self.bus.subscribers.get(channel, [])
                if self in subscribers:
                    subscribers.remove(self)
                if not subscribers:
                    self.bus.subscribers.pop(channel, None)


class _LocalBus:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: dict[str, list[_LocalSubscription]] = {}
        self.marks: dict[str, float] = {}

    def mark(self, key: str, ttl_s: int) -> None:
        with self.lock:
            self.marks[key] = time.monotonic() + ttl_s

    def marked(self, key: str) -> bool:
        with self.lock:
            return self.marks.get(key, 0) > time.monotonic()

    def publish(self, channel: str, data: str) -> None:
        with self.lock:
            for subscription in self.subscribers.get(channel, []):
                subscription.queue.put(data)

    def subscribe(self, *channels: str) -> _LocalSubscription:
        subscription = _LocalSubscription(self, channels)
        with self.lock:
            for channel in channels:
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
