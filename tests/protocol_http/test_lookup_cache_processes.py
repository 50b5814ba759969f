"""Token and tool lookups are cached per process; every change reaches every process on its very next request.

Two real gunicorn processes (separate caches) serve the test database; each is warmed first, so a
stale cache would answer from memory.
"""
from __future__ import annotations

import httpx
import pytest

from demo_company.seed import seed_tools
from mcp_tools.models import ApiToken, Tool
from mcp_tools.services.tokens import token_issue, token_revoke
from mcp_tools.services.tools import tools_set_enabled

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_servers(server_factory):
    return server_factory(), server_factory()


def invoke(server, secret, name="echo"):
    return httpx.post(f"{server.url}/mcp/v1/tools/invoke", json={"name": name, "arguments": {"message": "hi"}},
                      headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def warm(servers, secret):
    for server in servers:
        for _ in range(3):  # gthread: several requests, so the process's cache is certainly filled
            assert invoke(server, secret).status_code == 200


def test_revocation_and_disabling_reach_every_process_on_the_next_request(two_servers):
    seed_tools("http://127.0.0.1:9")
    issued = token_issue(name="agent", all_tools=True)
    warm(two_servers, issued.secret)

    tools_set_enabled(queryset=Tool.objects.filter(name="echo"), enabled=False)
    assert [invoke(s, issued.secret).status_code for s in two_servers] == [403, 403]
    tools_set_enabled(queryset=Tool.objects.filter(name="echo"), enabled=True)
    warm(two_servers, issued.secret)

    token_revoke(token=issued.token)
    for server in two_servers:
        response = invoke(server, issued.secret)
        assert response.status_code == 401 and "revoked" in response.text


def test_grants_and_deletions_reach_every_process(two_servers):
    tools = {tool.name: tool for tool in seed_tools("http://127.0.0.1:9")}
    issued = token_issue(name="agent", tools=[tools["echo"]])
    warm(two_servers, issued.secret)

    issued.token.allowed_tools.remove(tools["echo"])  # m2m_changed
    assert [invoke(s, issued.secret).status_code for s in two_servers] == [403, 403]
    issued.token.allowed_tools.add(tools["echo"])
    warm(two_servers, issued.secret)

    ApiToken.objects.filter(pk=issued.token.pk).delete()
    assert [invoke(s, issued.secret).status_code for s in two_servers] == [401, 401]
