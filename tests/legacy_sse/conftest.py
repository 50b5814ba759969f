"""Real servers for the HTTP+SSE transport: two gunicorn processes on the pytest test database.

Two processes (each one worker with threads, the product's gunicorn.conf.py) so a
test can open the event stream on one and POST the messages to the other: the
only thing they share is Postgres and Redis. Data a test creates must be
committed for them to see it, hence ``transactional_db``.
"""
from dataclasses import dataclass
import os
from pathlib import Path
import subprocess
import sys
import tempfile

from django.conf import settings
from django.db import connection
import httpx
import pytest

from ..helpers import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent.parent
# Short, so an idle stream shows its keep-alive comments within a test.
PING_INTERVAL_S = 1


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: str

    def log_text(self) -> str:
        return Path(self.log).read_text(errors="replace")


def _test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start(database_url: str, name: str) -> Server:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url,
           "REDIS_URL": settings.REDIS_URL, "DJANGO_SECRET_KEY": settings.SECRET_KEY,
           "MCP_TOKEN_PEPPER": settings.MCP_TOKEN_PEPPER, "GUNICORN_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "12", "MCP_SSE_PING_INTERVAL_S": str(PING_INTERVAL_S),
           "LOG_FORMAT": "plain", "PYTHONUNBUFFERED": "1", "DB_CONN_MAX_AGE": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tempfile.NamedTemporaryFile(prefix=f"sse-{name}-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mcp_project.wsgi", "--config", str(REPO / "gunicorn.conf.py")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log.name)

    def up():
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log_text()[-3000:]}")
        try:
            return httpx.get(f"{server.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, interval=0.2)
    return server


def _stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def sse_servers(django_db_setup, django_db_blocker):
    """Two independent server processes (A, B) on the test database and the test Redis."""
    with django_db_blocker.unblock():
        database_url = _test_database_url()
    servers = []
    try:
        servers.append(_start(database_url, "a"))
        servers.append(_start(database_url, "b"))
        yield servers
    finally:
        for server in servers:
            _stop(server)


@pytest.fixture
def server_a(sse_servers):
    return sse_servers[0]


@pytest.fixture
def server_b(sse_servers):
    return sse_servers[1]


@pytest.fixture
def tools(demo):
    """The demo's tools (committed: the servers are other processes)."""
    return demo


@pytest.fixture
def all_tools_token(tools, issue_token):
    return issue_token(name="sse-all", all_tools=True).secret


@pytest.fixture
def echo_only_token(tools, issue_token):
    return issue_token(name="sse-echo", tools=[tools["echo"]]).secret
