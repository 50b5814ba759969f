import os
from pathlib import Path
import subprocess
import sys
import tempfile

from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection
import httpx
import pytest

from demo_company.seed import seed_company, seed_resources_and_prompts, seed_tools
from mcp_tools.exceptions import ToolTimeout
from mcp_tools.kinds.base import HandlerKind, register
from mcp_tools.services.tokens import token_issue

from .helpers import free_port, wait_until
from .notifications.support import RedisServer

REPO = Path(__file__).resolve().parent.parent


@register
class ExplodingKind(HandlerKind):
    """Test-only kind: fails the way a buggy handler would."""

    name = "test_explode"
    config_schema = {"type": "object"}

    def run(self, arguments, config, context):
        raise RuntimeError("secret internal detail: password=hunter2")


@register
class SlowKind(HandlerKind):
    """Test-only kind that reports it ran out of time."""

    name = "test_timeout"
    config_schema = {"type": "object"}
    atomic = False

    def run(self, arguments, config, context):
        raise ToolTimeout(f"The tool did not finish within {context.timeout_s:g}s.")


def pytest_report_header(config):
    from tests.protocol.helpers import schema_judge

    return f"MCP message schemas: {schema_judge()}"


def pytest_collection_modifyitems(items):
    """A test that may use the database may also use the read-only alias sql_query tools run through.

    In tests that alias mirrors the test database (as another user); Django refuses connections to
    aliases a test did not declare, even from the live server's thread, so declare it for every test.
    """
    alias = settings.MCP_SQL_READONLY_ALIAS
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None and not {"db", "transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())):
            continue
        args, kwargs = (marker.args, dict(marker.kwargs)) if marker else ((), {})
        if len(args) > 2 or kwargs.get("databases") == "__all__":
            continue
        kwargs["databases"] = sorted(set(kwargs.get("databases") or ["default"]) | {alias})
        item.add_marker(pytest.mark.django_db(*args, **kwargs))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, plus the read-only role sql_query tools run as (granted on it)."""
    from mcp_tools.services.readonly_role import readonly_role_setup

    with django_db_blocker.unblock():
        readonly_role_setup()
    yield
    # The read-only alias keeps its connection open (CONN_MAX_AGE): close it so the test database can be dropped.
    from django.db import connections

    connections[settings.MCP_SQL_READONLY_ALIAS].close()


@pytest.fixture(autouse=True)
def _fresh_lookup_caches():
    """Rows rolled back or flushed between tests send no signal: start each test with cold lookup caches.

    Also forgets Redis servers the circuit breaker remembers as down."""
    from mcp_tools.redis_client import redis_breaker_reset
    from mcp_tools.services.lookup_cache import lookup_cache_bump

    redis_breaker_reset()  # a Redis a previous test stopped is not remembered as down
    lookup_cache_bump()


@pytest.fixture
def demo(transactional_db, live_server):
    """The seed's demo data, with the internal-API tools pointed at the live server."""
    seed_company()
    tools = seed_tools(live_server.url)
    seed_resources_and_prompts()
    return {tool.name: tool for tool in tools}


@pytest.fixture
def issue_token():
    def issue(**kwargs):
        kwargs.setdefault("name", "test")
        return token_issue(**kwargs)
    return issue


@pytest.fixture
def demo_token(demo, issue_token):
    return issue_token(name="demo", all_tools=True).secret


@pytest.fixture
def api(live_server):
    """An HTTP client for the live server (real sockets, real WSGI)."""
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        yield client


class _Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.content.decode("utf8", errors="replace")})
        return "250 Message accepted for delivery"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example.com"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_sink():
    """A local SMTP server (aiosmtpd) that records every message it accepts."""
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield type("SmtpSink", (), {"port": controller.port, "messages": sink.messages})()
    controller.stop()


def _test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, smtp_sink):
    """A real `celery worker` process on the test database, broker and SMTP sink."""
    from mcp_project.celery import app

    with django_db_blocker.unblock():
        database_url = _test_database_url()
    app.control.purge()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url,
           "REDIS_URL": settings.REDIS_URL, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_sink.port),
           "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "PYTHONUNBUFFERED": "1"}
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    node = f"test-{os.getpid()}@localhost"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mcp_project", "worker", "--loglevel", "INFO",
         "--concurrency", "2", "--without-gossip", "--without-mingle", "-n", node],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: process.poll() is not None or app.control.ping(destination=[node], timeout=0.5),
                   timeout=60)
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited early; see {log.name}")
        yield type("Worker", (), {"process": process, "log": log.name, "node": node})()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def private_redis():
    """A private redis-server on a free port that a test may freeze (SIGSTOP) or kill; always cleaned up."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.thaw()
        server.cleanup()
