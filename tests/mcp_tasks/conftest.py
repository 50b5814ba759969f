"""One real gunicorn server on the test database for the MCP tasks tests (the worker is tests/conftest.py's)."""
from __future__ import annotations

from django.conf import settings
from django.db import connection
import pytest

from mcp_tools.models import Tool
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save
from scripts.mcp_conformance import Server

from .helpers import SlowDownload, session


@pytest.fixture(scope="session")
def tasks_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        db = connection.settings_dict
        database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    server = Server(database_url=database_url, redis_url=settings.REDIS_URL, threads=10,
                    extra_env={"MCP_PAGE_SIZE": "2", "MCP_TASK_POLL_INTERVAL_MS": "200",
                               "MCP_LISTEN_MAX_STREAMS": "4"}).start()
    yield server
    server.stop()


@pytest.fixture
def tools(transactional_db):
    """An async tool (runs only as a task) and a sync one (may run as a task), both echoing their arguments."""
    slow = tool_save(tool=Tool(name="slow_echo", description="Echo, in the background", kind="echo",
                               execution=Tool.Execution.ASYNC, input_schema={"type": "object"}))
    quick = tool_save(tool=Tool(name="quick_echo", description="Echo, at once", kind="echo",
                                input_schema={"type": "object"}))
    return {"slow_echo": slow, "quick_echo": quick}


@pytest.fixture
def owner(tools):
    return token_issue(name="owner", all_tools=True)


@pytest.fixture
def other(tools):
    return token_issue(name="other", all_tools=True)


@pytest.fixture
def mcp_session(tasks_server, owner):
    """An initialized 2025-11-25 (handshake era, with tasks) session of the owner's token."""
    client = session(f"{tasks_server.url}/mcp", owner.secret)
    yield client
    client.close()


@pytest.fixture
def download(tools):
    """A slow upstream (about 3 s) and the async http_request tool 'fetch_report' that downloads from it."""
    server = SlowDownload()
    tool_save(tool=Tool(name="fetch_report", description="Download the nightly report (slow)", kind="http_request",
                        execution=Tool.Execution.ASYNC, input_schema={"type": "object"}, timeout_s=30,
                        config={"base_url": server.url, "path": "/report", "allowed_hosts": ["127.0.0.1"]}))
    yield server
    server.close()
