"""Rate limits for tool calls, counted in the shared cache (Redis in production).

Two buckets per call, both counted per caller (API token, admin user, else client IP):

- the caller's own limit: ``ApiToken.rate_limit``, else ``MCP_DEFAULT_RATE_LIMIT`` (100/m);
- the tool's limit, if it has one: ``Tool.rate_limit`` (e.g. database_query 10/m).

Counters live where every server process of the deployment sees them, so limits hold
across workers and machines. Windows are fixed, and a call counts whether or not it is
then refused. With a Redis cache both buckets are counted in one round trip (a Lua
script: SET NX EX + INCR each). With any other cache (the embedded mode's is local to
one process) they are counted in the database, one atomic upsert per bucket
(``RateLimitCounter``), which SQLite and Postgres both serialise across processes.

When Redis cannot be reached (the client's timeouts and circuit breaker keep that to one
timeout per few seconds, see mcp_tools/redis_client.py), calls run unthrottled (fail open) unless the tool
is destructive in MCP's terms: not ``readOnlyHint: true`` and not explicitly
``destructiveHint: false`` (MCP's default for a writing tool is destructive). Those
are refused with ServiceUnavailable (fail closed: an unthrottled agent must not be
able to delete or overwrite without limit). So reads and additive writes such as
``create_ticket`` keep working on Postgres alone while Redis is down.
"""
from datetime import datetime, timezone as dt_timezone
import logging
import random
import re
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import DatabaseError, connection

from ..exceptions import RateLimited, ServiceUnavailable
from ..models import RateLimitCounter

logger = logging.getLogger("mcp_tools.ratelimit")


def caller_key(caller) -> str:
    # The token's random prefix, not its pk: pks are reused after a database reset, counters are not.
    if caller.api_token is not None:
        return f"token:{caller.api_token.prefix}"
    if caller.oauth_token is not None:
        return f"oauth:{caller.label}:{getattr(caller.acting_user, 'pk', '')}"
    if caller.user is not None:
        return f"user:{caller.user.pk}"
    return f"ip:{caller.client_ip or 'unknown'}"


def _limits(tool, caller) -> list[tuple[str, str, str]]:
    """(group, rate, who) for each bucket this call counts against."""
    limits = []
    token = caller.api_token
    caller_rate = (token.rate_limit if token is not None else "") or settings.MCP_DEFAULT_RATE_LIMIT
    if caller_rate:
        limits.append(("mcp:caller", caller_rate, "this API token" if token is not None else "this caller"))
    if tool.rate_limit:
        limits.append((f"mcp:tool:{tool.name}", tool.rate_limit, f"tool '{tool.name}'"))
    return limits


def rate_limit_check(*, tool, caller) -> None:
    """Count this call; raise RateLimited when a limit is exceeded, ServiceUnavailable per the policy above."""
    key = caller_key(caller)
    limits = _limits(tool, caller)
    if not limits:
        return
    client = _redis_client()
    if client is not None:
        try:
            usages = _count_in_redis(client, key, limits)
        except Exception as exc:  # redis.ConnectionError, OSError, ...: the cache cannot count
            _cache_unavailable(tool, type(exc).__name__)
            return
    else:  # no Redis (the embedded mode): the database every process shares counts
        try:
            usages = _count_in_database(key, limits)
        except DatabaseError as exc:
            _cache_unavailable(tool, type(exc).__name__)
            return
    exceeded = [(max(1, time_left), rate, who)
                for (should_limit, time_left), (_group, rate, who) in zip(usages, limits) if should_limit]
    if exceeded:
        retry_after, rate, who = max(exceeded)
        raise RateLimited(f"Rate limit exceeded for {who} ({rate}). Retry after {retry_after} seconds.",
                          retry_after_s=retry_after)


_RATE = re.compile(r"(\d+)/(\d*)([smhd])")
_PERIOD_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _split_rate(rate: str) -> tuple[int, int]:
    """'10/m' -> (10, 60); '5/10m' -> (5, 600)."""
    count, multiplier, unit = _RATE.fullmatch(rate).groups()
    return int(count), _PERIOD_S[unit] * int(multiplier or 1)


def _redis_client():
    """The Redis client behind the default cache, or None when the cache is not Redis."""
    backend = caches["default"]
    get_client = getattr(getattr(backend, "_cache", None), "get_client", None)
    if not isinstance(backend, DjangoRedisCache) or get_client is None:
        return None
    return get_client(write=True)


# Every bucket of a call, counted in one round trip: create it at 0 with the window's remaining time as
# expiry unless it exists (SET NX EX; an existing counter keeps its expiry), then INCR it.
_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, 0, 'EX', tonumber(ARGV[i]), 'NX')
  counts[i] = redis.call('INCR', key)
end
return counts
"""
_scripts: dict[int, object] = {}


def _count_in_redis(client, key: str, limits) -> list[tuple[bool, int]]:
    """Count the call in every bucket (fixed windows): (over the limit?, seconds left in the window) each."""
    now = time.time()
    make_key = caches["default"].make_key
    buckets, expiries, windows = [], [], []
    for group, rate, _who in limits:
        allowed, period = _split_rate(rate)
        window_end = (int(now) // period + 1) * period
        buckets.append(make_key(f"rl:{group}:{rate}:{key}:{window_end}"))
        expiries.append(max(1, int(window_end - now) + 1))
        windows.append((allowed, window_end))
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts.setdefault(id(client), client.register_script(_COUNT_SCRIPT))
    counts = script(keys=buckets, args=expiries, client=client)
    return [(count > allowed, int(window_end - now)) for count, (allowed, window_end) in zip(counts, windows)]


_TABLE = RateLimitCounter._meta.db_table
# One statement, atomic on SQLite and Postgres alike: create the bucket at 1 or add 1, and read the count.
_UPSERT = (f'INSERT INTO {_TABLE} ("key", "count", "expires_at") VALUES (%s, 1, %s) '
           f'ON CONFLICT ("key") DO UPDATE SET "count" = {_TABLE}."count" + 1 RETURNING "count"')
_PRUNE_EVERY = 200  # on average once per this many counted calls, expired buckets are deleted


def _count_in_database(key: str, limits) -> list[tuple[bool, int]]:
    """Like ``_count_in_redis``, in the ``RateLimitCounter`` table (autocommit: one statement per bucket)."""
    now = time.time()
    results = []
    with connection.cursor() as cursor:
        for group, rate, _who in limits:
            allowed, period = _split_rate(rate)
            window_end = (int(now) // period + 1) * period
            bucket = f"rl:{group}:{rate}:{key}:{window_end}"[:255]
            expires_at = connection.ops.adapt_datetimefield_value(
                datetime.fromtimestamp(window_end, tz=dt_timezone.utc))
            cursor.execute(_UPSERT, [bucket, expires_at])
            count = cursor.fetchone()[0]
            results.append((count > allowed, int(window_end - now)))
    if random.randrange(_PRUNE_EVERY) == 0:
        RateLimitCounter.objects.filter(expires_at__lt=datetime.fromtimestamp(now, tz=dt_timezone.utc)).delete()
    return results


def tool_is_destructive(tool) -> bool:
    """MCP semantics: a tool that is not read-only is destructive unless it says otherwise."""
    annotations = tool.annotations or {}
    return annotations.get("readOnlyHint") is not True and annotations.get("destructiveHint") is not False


def _cache_unavailable(tool, error: str) -> None:
    if not tool_is_destructive(tool):
        logger.warning("Rate limiting unavailable (%s); running non-destructive tool %s without a limit",
                       error, tool.name)
        return
    logger.error("Rate limiting unavailable (%s); refusing destructive tool %s", error, tool.name)
    raise ServiceUnavailable(f"Rate limiting is temporarily unavailable, so tool '{tool.name}' (which may delete "
                             "or overwrite data) cannot run right now. Try again in a minute.")
