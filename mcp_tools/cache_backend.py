"""Django's Redis cache, minus per-operation work: one client and one connection pool per process.

Django's backend builds a new ``redis.Redis`` object for every cache operation, and
each thread's cache instance opens its own pool. Rate limiting does several cache
operations per tool call, so under gunicorn's threads that showed in the profile
(README, benchmark). ``redis.Redis`` and its pool are thread-safe, so sharing them is sound.
The pool gets the timeouts and circuit breaker of every Redis client (``mcp_tools/redis_client.py``).
"""
import threading

from .redis_client import redis_pool_options

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_pools: dict[tuple, object] = {}
_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], tuple(sorted((k, repr(v)) for k, v in self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _lock:
                pool = _pools.get(key)
                if pool is None:
                    # Timeouts, no retries and the circuit breaker of every Redis client (redis_client.py).
                    options = {**self._pool_options, **redis_pool_options(self._servers[index])}
                    pool = _pools[key] = self._pool_class.from_url(self._servers[index], **options)
        return pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None:
            with _lock:
                client = _clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedRedisCacheClient
