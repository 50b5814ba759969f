"""Every Redis client of a process comes from here: short timeouts, no silent retries, and a circuit breaker.

A Redis that is down costs each caller at most one connect or socket timeout
(``MCP_REDIS_CONNECT_TIMEOUT_MS`` / ``MCP_REDIS_SOCKET_TIMEOUT_MS``). A hung one
(stopped, not dead: the kernel still accepts connections, nothing answers) costs
the socket timeout. Once a server has failed *slowly* (a timeout, or any error
after half a timeout), every client of this process that talks to it (the cache
and rate limits, lookup caches, live events, session signals, HTTP+SSE sessions,
the broker check, the on-commit publishes) fails at once with
``redis.ConnectionError`` for ``MCP_REDIS_DOWN_S`` seconds; then the next command
tries again. So an outage costs one timeout per interval per process, not one per
call, and callers decide what "down" means for them (docs/reliability.md lists
each decision). A fast failure (connection refused: Redis is not running) costs
nothing to repeat and is not remembered, so a restarted Redis is used at once.

The breaker is keyed by server address, not by client, so the broker and the
cache on one Redis share it. It is per process: nothing about it needs Redis.
"""
from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_lock = threading.Lock()
_down_until: dict[str, float] = {}
_clients: dict[tuple, redis.Redis] = {}


def redis_channel(name: str) -> str:
    """The pub/sub channel ``name`` of this deployment.

    Pub/sub ignores the database number, so every channel carries ``MCP_REDIS_CHANNEL_PREFIX`` (by default
    the database number of ``REDIS_URL``): deployments sharing a server never hear each other.
    """
    return settings.MCP_REDIS_CHANNEL_PREFIX + name


def redis_address(url: str) -> str:
    """The server a URL points at ("host:port" or the socket path): the breaker's key."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def redis_down_remaining(address: str) -> float:
    """Seconds left during which ``address`` counts as down (0 when it may be tried)."""
    return max(0.0, _down_until.get(address, 0.0) - time.monotonic())


def redis_mark_down(address: str) -> None:
    """Remember that ``address`` failed; its clients fail fast for ``MCP_REDIS_DOWN_S`` seconds."""
    with _lock:
        _down_until[address] = time.monotonic() + settings.MCP_REDIS_DOWN_S


def redis_failure_record(address: str, *, elapsed_s: float, timed_out: bool = False) -> None:
    """Remember a failure that cost time (a timeout, or at least half the shortest timeout)."""
    if timed_out or elapsed_s >= 0.5 * min(connect_timeout_s(), socket_timeout_s()):
        redis_mark_down(address)


def redis_breaker_reset() -> None:
    """Forget every failure (tests; a process that knows Redis is back)."""
    with _lock:
        _down_until.clear()


def redis_check_breaker(address: str) -> None:
    """Raise redis.ConnectionError at once while ``address`` counts as down."""
    remaining = redis_down_remaining(address)
    if remaining > 0:
        raise redis.ConnectionError(
            f"Redis at {address} did not answer moments ago; not trying again for {remaining:.1f}s.")


class _BreakerMixin:
    """Fails fast while the server counts as down; a failure that cost time marks it down."""

    def _breaker_address(self) -> str:
        path = getattr(self, "path", None)
        return path if path else f"{self.host}:{self.port}"

    def _guarded(self, call, *args, **kwargs):
        address = self._breaker_address()
        try:
            redis_check_breaker(address)
        except redis.ConnectionError:
            # Never leave a connection with a command sent and its answer unread in the pool.
            self.disconnect()
            raise
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            redis_failure_record(address, elapsed_s=time.monotonic() - started,
                                 timed_out=isinstance(exc, (redis.TimeoutError, TimeoutError)))
            raise

    def connect_check_health(self, *args, **kwargs):
        return self._guarded(super().connect_check_health, *args, **kwargs)

    def send_packed_command(self, *args, **kwargs):
        return self._guarded(super().send_packed_command, *args, **kwargs)

    def read_response(self, *args, **kwargs):
        return self._guarded(super().read_response, *args, **kwargs)


class GuardedConnection(_BreakerMixin, redis.Connection):
    pass


class GuardedSSLConnection(_BreakerMixin, redis.SSLConnection):
    pass


class GuardedUnixConnection(_BreakerMixin, redis.UnixDomainSocketConnection):
    pass


def connect_timeout_s() -> float:
    return settings.MCP_REDIS_CONNECT_TIMEOUT_MS / 1000


def socket_timeout_s() -> float:
    return settings.MCP_REDIS_SOCKET_TIMEOUT_MS / 1000


def redis_pool_options(url: str, *, blocking_s: float = 0.0) -> dict:
    """Keyword arguments for ``ConnectionPool.from_url(url, ...)`` (also used by the Django cache backend).

    ``blocking_s``: the longest server-side wait a command of this client asks for (BLPOP's timeout);
    the socket timeout is that plus the usual one, so a blocking command is not cut short.
    """
    scheme = urlsplit(url).scheme
    connection_class = {"rediss": GuardedSSLConnection, "unix": GuardedUnixConnection}.get(scheme,
                                                                                            GuardedConnection)
    options = {
        "connection_class": connection_class,
        "socket_timeout": socket_timeout_s() + blocking_s,
        # One attempt per command: the breaker, not a retry loop, decides when to try again.
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
    }
    if connection_class is not GuardedUnixConnection:
        options["socket_connect_timeout"] = connect_timeout_s()
    return options


def redis_client(url: str, *, blocking_s: float = 0.0) -> redis.Redis:
    """The process's shared client for ``url`` (thread-safe; rebuilt after a fork)."""
    key = (url, blocking_s, os.getpid())
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                pool = redis.ConnectionPool.from_url(url, **redis_pool_options(url, blocking_s=blocking_s))
                client = _clients[key] = redis.Redis(connection_pool=pool)
    return client

