"""Rate limits in the embedded mode (SQLite, no Redis, tasks in-process) hold across server processes.

Two real gunicorn processes share one SQLite file, as ``make run`` with several workers does;
neither this suite's Postgres nor its Redis is involved.
"""
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from ..helpers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]

SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from mcp_tools.models import Tool
from mcp_tools.services.tokens import token_issue
Tool.objects.create(name="lookup", description="Read", kind="echo", input_schema={"type": "object"},
                    rate_limit="10/m", annotations={"readOnlyHint": True})
print(token_issue(name="agent", all_tools=True).secret)
"""


def _embedded_env(var_dir: str) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MCP_DEFAULT_RATE_LIMIT")}
    return {**env, "DJANGO_SETTINGS_MODULE": "mcp_project.settings", "MCP_VAR_DIR": var_dir,
            "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}


@pytest.fixture
def embedded_servers():
    var_dir = tempfile.mkdtemp(prefix="embedded-")
    env = _embedded_env(var_dir)
    secret = subprocess.run([sys.executable, "-c", SETUP], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=True).stdout.strip().splitlines()[-1]
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            log = tempfile.NamedTemporaryFile(prefix="gunicorn-embedded-", suffix=".log", delete=False)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "mcp_project.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "1", "--threads", "2", "--graceful-timeout", "2"],
                cwd=REPO, env={**env, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="prom-")},
                stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")

        def up(url):
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(lambda: all(up(u) for u in urls) or any(p.poll() is not None for p in processes), timeout=60)
        assert all(p.poll() is None for p in processes), "a gunicorn process exited; see /tmp/gunicorn-embedded-*"
        yield urls, secret
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(var_dir, ignore_errors=True)


def test_a_tool_limit_holds_across_two_embedded_server_processes(embedded_servers):
    urls, secret = embedded_servers
    # Windows are fixed minutes: start where all 30 calls fall into one.
    wait_until(lambda: time.time() % 60 < 40, timeout=30, interval=0.5)
    statuses = []
    for i in range(30):  # what the report tried: 30 calls to a 10/m tool, spread over the processes
        response = httpx.post(urls[i % 2] + "/mcp/v1/tools/invoke", json={"name": "lookup", "arguments": {}},
                              headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        statuses.append(response.status_code)
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    assert statuses[:10] == [200] * 10
