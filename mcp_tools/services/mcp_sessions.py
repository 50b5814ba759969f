"""Handshake-era MCP session state and cross-worker signalling, shared by every MCP transport.

Sessions live in Postgres (``McpSession``), so any worker, and a restarted one, can
serve any request of a session; live ones are read through a shared Redis copy (below). Signals that must cross workers quickly go through
Redis:

* a client's answer to one of our server-to-client requests (sampling, elicitation)
  arrives as a NEW POST, maybe on another worker: that worker pushes it on a
  per-request list which the waiting worker BLPOPs;
* ``notifications/cancelled`` sets a short-lived key the running request polls.

Stable API (used by the Streamable HTTP and the legacy HTTP+SSE transports):
``session_create``, ``session_load``, ``session_save``, ``session_end``,
``client_response_publish``, ``client_response_wait``, ``request_cancel``,
``request_is_cancelled``, ``principal_key``.

Without REDIS_URL (embedded mode, one process) the signals use in-process queues.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import json
import logging
import queue
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
import redis

from ..models import ApiToken, McpSession
from ..protocol.context import SessionState
from ..redis_client import redis_client

logger = logging.getLogger(__name__)

# A session unused for longer than this is gone (404); the client starts a new one.
SESSION_IDLE = timedelta(seconds=getattr(settings, "MCP_SESSION_IDLE_S", 24 * 3600))
# last_seen_at is written at most this often per session.
_TOUCH_RESOLUTION = timedelta(seconds=60)
# Redis keys expire after this, so an abandoned reply or cancel flag never lingers.
_SIGNAL_TTL_S = 600


@dataclass(frozen=True)
class LoadedSession:
    id: str
    state: SessionState


def principal_key(credential: Any) -> str:
    """A stable, non-secret name for whoever authenticated (an ApiToken, an OAuth token, None).

    An API token is its own principal; an OAuth access token stands for its (client application,
    user) pair, so sessions survive a token refresh.
    """
    if credential is None:
        return ""
    if isinstance(credential, ApiToken):
        return f"api-token:{credential.pk}"
    application_id = getattr(credential, "application_id", None)
    if application_id is not None:
        # An OAuth access token: the session belongs to the user and the client application, so a
        # refreshed token (RFC 6749 section 6) keeps it; another user or another client does not.
        return f"oauth:{application_id}:{getattr(credential, 'user_id', None) or '-'}"[:80]
    return f"{type(credential).__name__.lower()}:{getattr(credential, 'pk', '')}"[:80]


def session_create(*, state: SessionState, endpoint: str, principal: str) -> str:
    """Store a new session and return its id (visible ASCII, 256 random bits)."""
    session_id = secrets.token_urlsafe(32)
    client_name = str((state.client_info or {}).get("name", ""))[:200]
    McpSession.objects.create(id=session_id, endpoint=endpoint, principal=principal, state=state.to_dict(),
                              protocol_version=state.protocol_version, client_name=client_name)
    return session_id


def session_load(*, session_id: str, endpoint: str, principal: str) -> LoadedSession | None:
    """The live session, or None when unknown, ended, expired, or opened by someone else."""
    if not session_id or len(session_id) > 64:
        return None
    cached = _cache_read(session_id)
    if cached is not None:
        entry, epoch = cached
        if entry is not None:
            found = _from_entry(session_id, entry, endpoint, principal, epoch)
            if found is not _ASK_DATABASE:
                return found
    row = McpSession.objects.filter(id=session_id, endpoint=endpoint, ended_at__isnull=True).first()
    now = timezone.now()
    if row is None or row.principal != principal or now - row.last_seen_at > SESSION_IDLE:
        return None
    last_seen = row.last_seen_at
    if now - last_seen > _TOUCH_RESOLUTION:
        McpSession.objects.filter(pk=row.pk).update(last_seen_at=now)
        last_seen = now
    try:
        loaded = LoadedSession(id=row.id, state=SessionState.from_dict(row.state))
    except (KeyError, TypeError, ValueError):
        return None
    if cached is not None:
        _cache_fill(session_id, {"endpoint": row.endpoint, "principal": row.principal, "state": row.state,
                                 "last_seen": last_seen.timestamp()}, epoch=cached[1])
    return loaded


_ASK_DATABASE = object()


def _from_entry(session_id: str, entry: dict, endpoint: str, principal: str, epoch: str):
    """The session of a cached entry (same checks as a row: endpoint, principal, idle; touch once a minute).

    ``_ASK_DATABASE`` when the entry cannot decide (looks idle or unreadable): the row has the last word.
    """
    if entry.get("endpoint") != endpoint or entry.get("principal") != principal:
        return None  # neither ever changes for a session id
    now = timezone.now().timestamp()
    try:
        idle = now - float(entry["last_seen"])
        state = SessionState.from_dict(entry["state"])
    except (KeyError, TypeError, ValueError):
        return _ASK_DATABASE
    if idle > SESSION_IDLE.total_seconds():
        return _ASK_DATABASE
    if idle > _TOUCH_RESOLUTION.total_seconds():
        if not McpSession.objects.filter(pk=session_id, ended_at__isnull=True).update(
                last_seen_at=timezone.now()):
            _cache_invalidate(session_id)  # ended or deleted behind the cache's back
            return None
        _cache_fill(session_id, {**entry, "last_seen": now}, epoch=epoch)
    return LoadedSession(id=session_id, state=state)


def session_save(*, session_id: str, state: SessionState) -> None:
    McpSession.objects.filter(id=session_id, ended_at__isnull=True).update(
        state=state.to_dict(), protocol_version=state.protocol_version, last_seen_at=timezone.now())
    session_cache_invalidate(session_id=session_id)


def session_end(*, session_id: str, endpoint: str, principal: str) -> bool:
    """End a session (DELETE). False when there was no live session of this caller to end."""
    if session_load(session_id=session_id, endpoint=endpoint, principal=principal) is None:
        return False
    ended = bool(McpSession.objects.filter(id=session_id, ended_at__isnull=True).update(ended_at=timezone.now()))
    session_cache_invalidate(session_id=session_id)
    return ended


def session_prune(*, older_than: timedelta | None = None) -> int:
    """Delete sessions idle (or ended) for longer than ``older_than`` (default: the idle limit)."""
    cutoff = timezone.now() - (older_than or SESSION_IDLE)
    deleted, _ = McpSession.objects.filter(last_seen_at__lt=cutoff).delete()
    return deleted


# --- read-through cache of live sessions in Redis --------------------------------------------------
#
# Every request of a handshake-era session used to read its McpSession row. A live session's row is now
# also kept in Redis (``mcp:session:<id>``, one MGET per request instead of a query), so every process
# shares one copy. Postgres stays the record: every change (save, end, admin delete, prune) is written
# there first and then invalidates the copy in every process at once by deleting it and giving the
# session a new random epoch (``mcp:session-epoch:<id>``). A copy is only stored if the epoch is still
# the one read before the row was (one Lua script, atomic in Redis), so a reader that loaded the row just
# before a change can never put the old row back. Copies expire after MCP_LOOKUP_CACHE_TTL_S (the bound
# for a change made while Redis was unreachable, as for the lookup caches); with Redis unreachable, or
# MCP_LOOKUP_CACHE off, every request reads Postgres as before.

_EPOCH_TTL_S = 3600  # far longer than a read-then-fill takes
_FILL_IF_EPOCH = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def _entry_key(session_id: str) -> str:
    return f"mcp:session:{session_id}"


def _epoch_key(session_id: str) -> str:
    return f"mcp:session-epoch:{session_id}"


def _cache_client():
    """The lookup caches' Redis client, or None when the cache is off or Redis recently failed."""
    from . import lookup_cache

    if not lookup_cache._enabled() or time.monotonic() < lookup_cache._down_until:
        return None
    return lookup_cache._redis()


def _cache_failed(exc: Exception) -> None:
    from . import lookup_cache

    lookup_cache._down_until = time.monotonic() + lookup_cache._RETRY_AFTER_FAILURE_S
    logger.warning("MCP session cache unavailable: %s", exc)


def _cache_read(session_id: str) -> tuple[dict | None, str] | None:
    """(cached entry or None, current epoch), or None when the cache cannot be used."""
    client = _cache_client()
    if client is None:
        return None
    try:
        raw, epoch = client.mget([_entry_key(session_id), _epoch_key(session_id)])
    except redis.RedisError as exc:
        _cache_failed(exc)
        return None
    epoch = epoch.decode() if isinstance(epoch, bytes) else (epoch or "")
    try:
        entry = json.loads(raw) if raw is not None else None
    except ValueError:
        entry = None
    return (entry if isinstance(entry, dict) else None), epoch


def _cache_fill(session_id: str, entry: dict, *, epoch: str) -> None:
    client = _cache_client()
    if client is None:
        return
    ttl = max(1, int(getattr(settings, "MCP_LOOKUP_CACHE_TTL_S", 60)))
    try:
        client.eval(_FILL_IF_EPOCH, 2, _entry_key(session_id), _epoch_key(session_id), epoch,
                    json.dumps(entry, separators=(",", ":")), ttl)
    except redis.RedisError as exc:
        _cache_failed(exc)


def _cache_invalidate(session_id: str) -> None:
    from . import lookup_cache

    if not lookup_cache._enabled():
        return
    try:
        pipe = lookup_cache._redis().pipeline()
        pipe.set(_epoch_key(session_id), secrets.token_hex(8), ex=_EPOCH_TTL_S)
        pipe.delete(_entry_key(session_id))
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Could not invalidate the cached MCP session %s...: %s", session_id[:8], exc)


def session_cache_invalidate(*, session_id: str) -> None:
    """Drop the cached copy of a session in every process, now and again when the transaction commits."""
    _cache_invalidate(session_id)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _cache_invalidate(session_id))


# --- cross-worker signals -------------------------------------------------------------------------

def _reply_key(session_id: str, request_id: Any) -> str:
    return f"mcp:reply:{session_id}:{json.dumps(request_id)}"


def _cancel_key(scope: str, request_id: Any) -> str:
    return f"mcp:cancel:{scope}:{json.dumps(request_id)}"


def client_response_publish(*, session_id: str, message: dict[str, Any]) -> None:
    """Hand a client's JSON-RPC response (``{"id", "result"|"error"}``) to the worker waiting for it."""
    _signals().push(_reply_key(session_id, message.get("id")), json.dumps(message))


def client_response_wait(*, session_id: str, request_id: Any, timeout: float) -> dict[str, Any] | None:
    """Block until the client answers ``request_id`` (a server-to-client request), or None on timeout."""
    raw = _signals().pop(_reply_key(session_id, request_id), timeout)
    return json.loads(raw) if raw is not None else None


def client_request_result(*, session_id: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Wait for the client's answer to ``message`` (a request we already sent it); its result, or ProtocolError.

    Shared by the transports that carry server-to-client requests (Streamable HTTP, HTTP+SSE).
    """
    from ..protocol import ProtocolError
    from ..protocol.jsonrpc import INTERNAL_ERROR

    reply = client_response_wait(session_id=session_id, request_id=message["id"], timeout=timeout)
    if reply is None:
        raise ProtocolError(INTERNAL_ERROR, f"The client did not answer {message['method']} within {timeout:g}s")
    if "error" in reply:
        error = reply.get("error") or {}
        raise ProtocolError(int(error.get("code", INTERNAL_ERROR)),
                            str(error.get("message", "The client refused the request")))
    result = reply.get("result")
    return result if isinstance(result, dict) else {}


def request_cancel(*, scope: str, request_id: Any) -> None:
    """Mark a running request cancelled; ``scope`` is the session id (or another per-client scope)."""
    _signals().flag(_cancel_key(scope, request_id))


def request_is_cancelled(*, scope: str, request_id: Any) -> bool:
    return _signals().flagged(_cancel_key(scope, request_id))


_BLPOP_CHUNK_S = 4.0


class _RedisSignals:
    def __init__(self, url: str) -> None:
        # BLPOP waits up to _BLPOP_CHUNK_S on the server: its socket timeout allows for that.
        self.client = redis_client(url, blocking_s=_BLPOP_CHUNK_S)

    def push(self, key: str, value: str) -> None:
        pipe = self.client.pipeline()
        pipe.rpush(key, value)
        pipe.expire(key, _SIGNAL_TTL_S)
        pipe.execute()

    def pop(self, key: str, timeout: float) -> str | None:
        # Waiting in chunks keeps each BLPOP within the client's socket timeout.
        deadline = time.monotonic() + max(timeout, 0.01)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            item = self.client.blpop([key], timeout=min(remaining, _BLPOP_CHUNK_S))
            if item:
                return item[1].decode()

    def flag(self, key: str) -> None:
        self.client.set(key, "1", ex=_SIGNAL_TTL_S)

    def flagged(self, key: str) -> bool:
        return bool(self.client.exists(key))


class _LocalSignals:
    """Embedded mode (no Redis, one process): the same operations on in-process queues."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, queue.Queue] = {}
        self.flags: set[str] = set()

    def _queue(self, key: str) -> queue.Queue:
        with self.lock:
            return self.queues.setdefault(key, queue.Queue())

    def push(self, key: str, value: str) -> None:
        self._queue(key).put(value)

    def pop(self, key: str, timeout: float) -> str | None:
        try:
            return self._queue(key).get(timeout=timeout)
        except queue.Empty:
            return None
        finally:
            with self.lock:
                q = self.queues.get(key)
                if q is not None and q.empty():
                    self.queues.pop(key, None)

    def flag(self, key: str) -> None:
        with self.lock:
            self.flags.add(key)

    def flagged(self, key: str) -> bool:
        return key in self.flags


_SIGNALS = None
_SIGNALS_LOCK = threading.Lock()


def _signals():
    global _SIGNALS
    if _SIGNALS is None:
        with _SIGNALS_LOCK:
            if _SIGNALS is None:
                _SIGNALS = _RedisSignals(settings.REDIS_URL) if settings.REDIS_URL else _LocalSignals()
    return _SIGNALS
