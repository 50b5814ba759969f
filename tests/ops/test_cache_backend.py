"""The shared-client Redis cache: same behaviour as Django's, one client and pool per process."""
import threading

from django.core.cache import cache, caches

from mcp_tools.cache_backend import SharedRedisCacheClient


def test_it_is_the_configured_backend_and_works_like_djangos():
    assert isinstance(cache._cache, SharedRedisCacheClient)
    cache.set("ops-test-key", {"n": 1}, 30)
    assert cache.get("ops-test-key") == {"n": 1}
    assert cache.add("ops-test-key", "other", 30) is False
    cache.set("ops-test-counter", 0, 30)
    assert cache.incr("ops-test-counter") == 1
    cache.delete_many(["ops-test-key", "ops-test-counter"])
    assert cache.get("ops-test-key") is None


def test_threads_share_one_client_and_pool():
    clients = []

    def grab():
        clients.append(caches["default"]._cache.get_client(write=True))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grab()
    assert len({id(client) for client in clients}) == 1
    assert len({id(client.connection_pool) for client in clients}) == 1
