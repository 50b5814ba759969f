"""Real gunicorn servers for the MCP Streamable HTTP tests, on the pytest test database."""
from __future__ import annotations

from django.conf import settings
from django.db import connection
import pytest

from scripts.mcp_conformance import Server

PAGE_SIZE = 2  # small, so the SDK client has to walk several tools/list pages


def database_url_of_tests() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_server(database_url: str, **extra_env: str) -> Server:
    server = Server(database_url=database_url, redis_url=settings.REDIS_URL, threads=10,
                    extra_env={"MCP_PAGE_SIZE": str(PAGE_SIZE), "MCP_CLIENT_REQUEST_TIMEOUT_S": "10",
                               "MCP_STREAM_WORKERS": "4", "MCP_LISTEN_MAX_STREAMS": "4", **extra_env})
    return server.start()


@pytest.fixture(scope="session")
def server_factory(django_db_setup, django_db_blocker):
    """Start gunicorn processes on the test database; all are stopped at the end of the session."""
    with django_db_blocker.unblock():
        database_url = database_url_of_tests()
    started: list[Server] = []

    def start(**extra_env: str) -> Server:
        server = start_server(database_url, **extra_env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def mcp_server(server_factory) -> Server:
    """One gunicorn (gthread) process serving /mcp, /mcp/<slug> and the conformance fixtures."""
    return server_factory()
