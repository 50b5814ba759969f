"""Rate limits: per token, per tool, the global default, across two server processes, and with Redis down.

Counters are keyed by the token's random prefix, so tests never share a bucket and
nothing here flushes the shared Redis database.
"""
import os
from pathlib import Path
import subprocess
import sys
import tempfile

from django.conf import settings
from django.test import override_settings
import httpx
import pytest

from demo_company.seed import seed_company, seed_tools
from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.invocation import Caller, tool_invoke

from ..conftest import _test_database_url
from ..helpers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def make_tool(name="limited", rate_limit="", read_only=False, destructive=None):
    annotations = {"readOnlyHint": read_only}
    if destructive is not None:
        annotations["destructiveHint"] = destructive
    return Tool.objects.create(name=name, description=name, kind="echo", input_schema={"type": "object"},
                               rate_limit=rate_limit, annotations=annotations)


def outcomes(token, name, times):
    return [tool_invoke(name=name, arguments={}, caller=Caller(token=token)).outcome for _ in range(times)]


def test_a_tool_limit_is_hit_at_the_right_count(issue_token):
    make_tool(rate_limit="3/m")
    token = issue_token(all_tools=True).token
    assert outcomes(token, "limited", 5) == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
    refused = tool_invoke(name="limited", arguments={}, caller=Caller(token=token))
    assert refused.error_code == "rate_limited"
    assert 1 <= refused.retry_after_s <= 60
    assert refused.message == (f"Rate limit exceeded for tool 'limited' (3/m). "
                               f"Retry after {refused.retry_after_s} seconds.")
    assert list(AuditEvent.objects.order_by("created_at").values_list("outcome", flat=True)) == \
        ["ok"] * 3 + ["rate_limited"] * 3


def test_a_tool_limit_counts_each_token_separately(issue_token):
    make_tool(rate_limit="2/m")
    first, second = issue_token(all_tools=True).token, issue_token(all_tools=True).token
    assert outcomes(first, "limited", 3) == ["ok", "ok", "rate_limited"]
    assert outcomes(second, "limited", 2) == ["ok", "ok"]


def test_a_token_limit_covers_all_its_tools(issue_token):
    make_tool("one")
    make_tool("two")
    token = issue_token(all_tools=True, rate_limit="3/m").token
    assert outcomes(token, "one", 2) + outcomes(token, "two", 2) == ["ok", "ok", "ok", "rate_limited"]
    refused = tool_invoke(name="one", arguments={}, caller=Caller(token=token))
    assert refused.message.startswith("Rate limit exceeded for this API token (3/m).")


def test_the_global_default_applies_to_tokens_without_their_own_limit(issue_token):
    make_tool()
    token = issue_token(all_tools=True).token
    with override_settings(MCP_DEFAULT_RATE_LIMIT="2/m"):
        assert outcomes(token, "limited", 3) == ["ok", "ok", "rate_limited"]


def test_a_tokens_own_limit_replaces_the_default(issue_token):
    make_tool()
    token = issue_token(all_tools=True, rate_limit="4/m").token
    with override_settings(MCP_DEFAULT_RATE_LIMIT="1/m"):
        assert outcomes(token, "limited", 5) == ["ok"] * 4 + ["rate_limited"]


def test_refused_calls_are_not_counted_before_the_permission_check(issue_token):
    make_tool(rate_limit="1/m")
    other = make_tool("other")
    token = issue_token(tools=[other]).token
    assert outcomes(token, "limited", 3) == ["denied"] * 3  # no access: refused before any counting


@pytest.mark.django_db(transaction=True, databases=["default", "tools_readonly"])
def test_the_seeds_database_query_allows_ten_a_minute(issue_token):
    seed_company()
    seed_tools("http://127.0.0.1:9")
    assert Tool.objects.get(name="database_query").rate_limit == "10/m"
    assert Tool.objects.get(name="send_notification").rate_limit == "50/h"
    token = issue_token(all_tools=True).token
    results = [tool_invoke(name="database_query", arguments={"query": "SELECT 1 AS one"},
                           caller=Caller(token=token)) for _ in range(11)]
    assert [r.outcome for r in results] == ["ok"] * 10 + ["rate_limited"]


def test_rest_answers_429_with_retry_after(api, issue_token):
    make_tool(rate_limit="1/m")
    secret = issue_token(all_tools=True).secret
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.post("/mcp/v1/tools/invoke", json={"name": "limited"}, headers=headers).status_code == 200
    response = api.post("/mcp/v1/tools/invoke", json={"name": "limited"}, headers=headers)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.json() == {"success": False, "error": "Rate limit exceeded for tool 'limited' (1/m). "
                                                          f"Retry after {response.headers['Retry-After']} seconds."}


class TestRedisDown:
    """The cache points at a closed port on this machine; the real Redis is left alone."""

    @pytest.fixture(autouse=True)
    def dead_cache(self):
        dead = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                            "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
        with override_settings(CACHES=dead):
            yield

    def test_read_only_tools_fail_open(self, issue_token, caplog):
        make_tool("reader", rate_limit="1/m", read_only=True)
        token = issue_token(all_tools=True).token
        assert outcomes(token, "reader", 3) == ["ok", "ok", "ok"]
        assert "Rate limiting unavailable" in caplog.text

    def test_non_destructive_writers_fail_open(self, issue_token):
        make_tool("adder", rate_limit="1/m", destructive=False)
        token = issue_token(all_tools=True).token
        assert outcomes(token, "adder", 2) == ["ok", "ok"]

    def test_destructive_tools_fail_closed_with_a_clear_error(self, issue_token):
        make_tool("writer")  # not read-only, no destructiveHint: destructive by MCP's default
        token = issue_token(all_tools=True).token
        invocation = tool_invoke(name="writer", arguments={}, caller=Caller(token=token))
        assert (invocation.outcome, invocation.error_code) == ("internal_error", "unavailable")
        assert invocation.message == ("Rate limiting is temporarily unavailable, so tool 'writer' (which may "
                                      "delete or overwrite data) cannot run right now. Try again in a minute.")
        assert AuditEvent.objects.get().error_code == "unavailable"

    def test_rest_answers_503(self, api, issue_token):
        make_tool("writer")
        secret = issue_token(all_tools=True).secret
        response = api.post("/mcp/v1/tools/invoke", json={"name": "writer"},
                            headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 503
        assert "temporarily unavailable" in response.json()["error"]


@pytest.fixture
def two_servers(transactional_db, django_db_blocker):
    """Two gunicorn processes on free local ports, on the test database and this suite's Redis."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": _test_database_url(),
           "REDIS_URL": settings.REDIS_URL, "MCP_DEFAULT_RATE_LIMIT": "100000/m", "PYTHONUNBUFFERED": "1"}
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "mcp_project.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "1", "--threads", "2", "--graceful-timeout", "2"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")

        def up(url):
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(lambda: all(up(u) for u in urls) or any(p.poll() is not None for p in processes), timeout=60)
        assert all(p.poll() is None for p in processes), "a gunicorn process exited; see /tmp/gunicorn-*.log"
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_the_limit_holds_across_two_server_processes(two_servers, issue_token):
    make_tool(rate_limit="4/m")
    secret = issue_token(all_tools=True).secret
    statuses, pids = [], set()
    for i in range(8):
        response = httpx.post(two_servers[i % 2] + "/mcp/v1/tools/invoke", json={"name": "limited"},
                              headers={"Authorization": f"Bearer {secret}"}, timeout=10)
        statuses.append(response.status_code)
    # Alternating between the processes: 4 calls in total succeed, not 4 per process.
    assert statuses == [200] * 4 + [429] * 4
    assert AuditEvent.objects.filter(outcome="rate_limited").count() == 4


def test_counters_expire_with_their_window(issue_token):
    from django.core.cache import cache

    from mcp_tools.services.ratelimit import _redis_client

    make_tool(rate_limit="3/h")
    token = issue_token(all_tools=True, rate_limit="5/m").token
    assert outcomes(token, "limited", 1) == ["ok"]
    client = _redis_client()
    buckets = client.keys(cache.make_key(f"rl:*:token:{token.prefix}:*"))
    assert len(buckets) == 2  # the token's own bucket and the tool's
    ttls = sorted(client.ttl(bucket) for bucket in buckets)
    assert 0 < ttls[0] <= 61 and 0 < ttls[1] <= 3601
    assert sorted(int(client.get(bucket)) for bucket in buckets) == [1, 1]
