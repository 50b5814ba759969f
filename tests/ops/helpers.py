"""Helpers for the ops tests: run the product under gunicorn (gunicorn.conf.py) on the test database."""
from contextlib import contextmanager
import os
from pathlib import Path
import signal
import subprocess
import sys

from django.conf import settings
from django.db import connection
import httpx

from tests.helpers import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def gunicorn_server(*, workers: int, multiproc_dir: Path, log_path: Path, extra_env: dict | None = None):
    """Start `gunicorn --config gunicorn.conf.py` on a free loopback port; yield its base URL."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": test_database_url(),
           "REDIS_URL": settings.REDIS_URL, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers),
           "GUNICORN_THREADS": "4",  # each thread may keep a database connection: stay small beside other suites
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir), "LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1",
           **(extra_env or {})}
    bin_dir = Path(sys.executable).parent
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py", "mcp_project.wsgi"],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{log_path.read_text()}")
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=30)
        yield type("Gunicorn", (), {"url": url, "process": process, "log": log_path})()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
