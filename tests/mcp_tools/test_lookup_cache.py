"""The per-process token and tool caches: hits cost no query, every change invalidates, Redis down means no cache."""
from django.test import override_settings
import pytest

from mcp_tools.exceptions import AuthenticationFailed
from mcp_tools.models import ApiToken, Tool
from mcp_tools.services import lookup_cache
from mcp_tools.services.invocation import tool_find
from mcp_tools.services.tokens import token_authenticate, token_issue, token_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture
def tool():
    return Tool.objects.create(name="cached_echo", description="d", kind="echo", config={})


def test_a_warm_lookup_costs_no_query(django_assert_num_queries, tool):
    issued = token_issue(name="agent", tools=[tool])
    token_authenticate(raw=issued.secret)  # fills the cache and writes last_used_at
    tool_find(name="cached_echo")
    with django_assert_num_queries(0):
        assert token_authenticate(raw=issued.secret).pk == issued.token.pk
        assert tool_find(name="cached_echo").pk == tool.pk


def test_the_secret_is_still_checked_on_a_cached_row():
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    tampered = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed, match="Invalid API token"):
        token_authenticate(raw=tampered)


def test_revocation_takes_effect_on_the_next_lookup():
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    token_revoke(token=issued.token)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        token_authenticate(raw=issued.secret)


def test_another_process_bumping_the_generation_invalidates_this_one(tool):
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    tool_find(name="cached_echo")
    # What another process does: change the rows without this process seeing a signal, then bump in Redis.
    ApiToken.objects.filter(pk=issued.token.pk).update(name="renamed")
    Tool.objects.filter(pk=tool.pk).update(description="changed")
    assert token_authenticate(raw=issued.secret).name == "agent"  # cached: proves the cache is in use
    lookup_cache._redis().mset({"mcp:gen:tokens": "from-elsewhere-1", "mcp:gen:tools": "from-elsewhere-2"})
    assert token_authenticate(raw=issued.secret).name == "renamed"
    assert tool_find(name="cached_echo").description == "changed"


def test_a_lost_generation_key_invalidates_everything(tool):
    tool_find(name="cached_echo")
    Tool.objects.filter(pk=tool.pk).update(description="changed")
    lookup_cache._redis().delete("mcp:gen:tools")  # e.g. Redis restarted without persistence
    assert tool_find(name="cached_echo").description == "changed"


def test_without_redis_every_lookup_reads_the_database(django_assert_num_queries, tool):
    tool_find(name="cached_echo")
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        lookup_cache._down_until = 0.0
        Tool.objects.filter(pk=tool.pk).update(description="changed")  # no bump reaches anyone
        with django_assert_num_queries(1):
            assert tool_find(name="cached_echo").description == "changed"
    lookup_cache._down_until = 0.0
    lookup_cache._client = None


def test_last_used_at_stays_throttled(django_assert_num_queries):
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(0):
        token_authenticate(raw=issued.secret)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first


@pytest.fixture
def request_scope():
    """What Django's request_started/request_finished do around every request (mcp_tools/signals.py)."""
    lookup_cache.generations_request_scope(True)
    yield lambda: lookup_cache.generations_request_scope(True)  # "the next request"
    lookup_cache.generations_request_scope(False)


def test_a_request_reads_the_generations_once(monkeypatch, tool, request_scope):
    issued = token_issue(name="agent", tools=[tool])
    reads = []
    client = lookup_cache._redis()
    real_mget = client.mget
    monkeypatch.setattr(client, "mget", lambda keys: reads.append(keys) or real_mget(keys))
    monkeypatch.setattr(client, "get", lambda key: pytest.fail(f"unexpected GET {key}"))
    token_authenticate(raw=issued.secret)
    tool_find(name="cached_echo")
    tool_find(name="cached_echo")
    assert reads == [["mcp:gen:tools", "mcp:gen:tokens"]]


def test_another_process_s_change_is_seen_by_the_next_request(tool, request_scope):
    tool_find(name="cached_echo")
    Tool.objects.filter(pk=tool.pk).update(description="changed")
    lookup_cache._redis().set("mcp:gen:tools", "bumped-elsewhere")
    assert tool_find(name="cached_echo").description == "d"  # the running request keeps its generations
    request_scope()
    assert tool_find(name="cached_echo").description == "changed"


def test_this_process_s_own_change_is_seen_at_once_within_the_request(request_scope):
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    token_revoke(token=issued.token)  # bumps: drops this request's generations too
    with pytest.raises(AuthenticationFailed, match="revoked"):
        token_authenticate(raw=issued.secret)


def test_outside_a_request_every_lookup_reads_the_generation(tool):
    lookup_cache.generations_request_scope(False)
    tool_find(name="cached_echo")
    Tool.objects.filter(pk=tool.pk).update(description="changed")
    lookup_cache._redis().set("mcp:gen:tools", "bumped-elsewhere")
    assert tool_find(name="cached_echo").description == "changed"
