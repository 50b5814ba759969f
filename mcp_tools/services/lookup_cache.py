"""Per-process caches of token and tool rows, invalidated across processes by generation numbers in Redis.

Every cached lookup first reads the kind's generation (``mcp:gen:tools`` / ``mcp:gen:tokens``; within
a request both are read once, with one MGET, and reused until the request ends); the process's entries are only used while that value equals the one they were built under.
Every change bumps it: the service functions, ``post_save``/``post_delete``/``m2m_changed`` receivers
(mcp_tools/signals.py), and every ``QuerySet.update()`` on these models (which no signal sees). A bump
happens at once and again after the surrounding transaction commits, so a row re-read by another
process before the commit cannot stay cached.

Generations are random values, not counters: if Redis loses its data, the new value differs from
every cached one. When Redis cannot be read, lookups go to the database uncached and the process's
entries are dropped, so nothing cached before an outage survives it. Entries also expire after
``MCP_LOOKUP_CACHE_TTL_S`` (default 60 s), a bound for the one case no generation can cover: a change
made while Redis was unreachable. ``MCP_LOOKUP_CACHE=off`` turns the caches off.
"""
import contextvars
import copy
import logging
import secrets
import threading
import time
from typing import Callable

from django.conf import settings
from django.db import transaction
import redis

from ..redis_client import redis_client

logger = logging.getLogger(__name__)

TOOLS = "tools"
TOKENS = "tokens"
KINDS = (TOOLS, TOKENS)
_MAX_ENTRIES = 20_000
_RETRY_AFTER_FAILURE_S = 1.0
_lock = threading.Lock()
_down_until = 0.0
# kind -> (generation, {key: (stored_at, value)})
_caches: dict[str, tuple[str | None, dict]] = {kind: (None, {}) for kind in KINDS}


def _gen_key(kind: str) -> str:
    return f"mcp:gen:{kind}"


def _enabled() -> bool:
    return bool(getattr(settings, "REDIS_URL", "")) and getattr(settings, "MCP_LOOKUP_CACHE", True)


def _redis() -> redis.Redis:
    return redis_client(settings.REDIS_URL)


def _current_generation(kind: str) -> str | None:
    """The kind's generation, or None when Redis cannot say (then nothing may be served from cache).

    Inside a request every kind's generation is read once, together (one MGET), and reused for the rest
    of that request (see ``generations_request_scope``); elsewhere each lookup reads it.
    """
    global _down_until
    if not _enabled() or time.monotonic() < _down_until:
        return None
    memo = _request_generations.get()
    if memo:
        return memo.get(kind)
    try:
        client = _redis()
        values = dict(zip(KINDS, client.mget([_gen_key(k) for k in KINDS])))
        for missing in [k for k, v in values.items() if v is None]:
            client.set(_gen_key(missing), secrets.token_hex(8), nx=True)
            values[missing] = client.get(_gen_key(missing))
    except redis.RedisError:
        _down_until = time.monotonic() + _RETRY_AFTER_FAILURE_S
        lookup_cache_clear()
        return None
    values = {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}
    if memo is not None and all(values.values()):
        memo.update(values)
    return values[kind]


# The generations read by the current request: None outside a request, {} until the first lookup.
_request_generations: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "mcp_lookup_generations", default=None)


def generations_request_scope(active: bool) -> None:
    """Start (True) or end (False) the current request's reuse of the generations it read.

    Connected to Django's request_started/request_finished (mcp_tools/signals.py). A change in another
    process is therefore seen by its next request, not in the middle of one already running; a change
    in this process (``lookup_cache_bump``) is seen at once, also by the running request.
    """
    _request_generations.set({} if active else None)


def cached_lookup(*, kind: str, key, load: Callable):
    """``load()`` through the kind's cache; None results are not cached. Returns a copy per call."""
    generation = _current_generation(kind)
    if generation is None:
        return load()
    ttl = getattr(settings, "MCP_LOOKUP_CACHE_TTL_S", 60)
    now = time.monotonic()
    cached_generation, entries = _caches[kind]
    if cached_generation == generation:
        hit = entries.get(key)
        if hit is not None and now - hit[0] < ttl:
            return copy.copy(hit[1])
    else:
        entries = {}
        with _lock:
            _caches[kind] = (generation, entries)
    value = load()
    if value is not None:
        if len(entries) >= _MAX_ENTRIES:
            entries.clear()
        entries[key] = (now, copy.copy(value))
    return value


def cached_entry_update(*, kind: str, key, **fields) -> None:
    """Change attributes of this process's cached entry (e.g. last_used_at) without invalidating others."""
    hit = _caches[kind][1].get(key)
    if hit is not None:
        for name, value in fields.items():
            setattr(hit[1], name, value)


def lookup_cache_clear() -> None:
    """Drop this process's entries (they are rebuilt from the database)."""
    memo = _request_generations.get()
    if memo:
        memo.clear()  # in place: a streaming call's worker thread shares the request's dict
    with _lock:
        for kind in KINDS:
            _caches[kind] = (None, {})


def _bump_now(kinds) -> None:
    lookup_cache_clear()
    if not _enabled():
        return
    try:
        _redis().mset({_gen_key(kind): secrets.token_hex(8) for kind in kinds})
    except redis.RedisError as exc:
        logger.warning("Could not bump lookup cache generations %s: %s", ",".join(kinds), exc)


def lookup_cache_bump(*kinds: str) -> None:
    """Invalidate ``kinds`` (default: all) in every process, now and again when the transaction commits."""
    kinds = kinds or KINDS
    _bump_now(kinds)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _bump_now(kinds))
