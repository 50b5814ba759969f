"""Production smoke: the Procfile's processes, from a venv built from requirements.txt alone.

What a deployment runs, run the way it runs it: ``release`` once, then ``web``, ``beat`` and (later)
``worker``, each line of the Procfile executed by a shell, against Postgres and Redis, with the
settings from the environment and nothing from the test suite's venv. Checked from the outside:

* ``/health/ready`` answers 200 with a worker outage (and says so in its JSON), then reports the worker;
* ``send_notification`` accepted while no worker runs is delivered by the worker started afterwards,
  to an SMTP sink in this process;
* ``database_query`` (the read-only role made by ``release``) and ``create_ticket`` succeed over the
  REST pair with a token issued by the product's own command;
* ``manage.py mcp_stdio`` answers ``tools/list``;
* every long-running process is still alive at the end. A process that dies fails the test with
  the end of its output.

Its own database and Redis db: PRODUCTION_SMOKE_DATABASE_URL (default .../mcp_smoke, dropped and
re-created) and PRODUCTION_SMOKE_REDIS_URL (default redis://127.0.0.1:6379/14, flushed).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import re
import secrets
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
import httpx
import psycopg
import pytest
import redis

from tests.helpers import free_port

from .production import Process, clean_environment, procfile, processes, production_venv, run_once, tail

DATABASE_URL = os.environ.get("PRODUCTION_SMOKE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mcp_smoke")
REDIS_URL = os.environ.get("PRODUCTION_SMOKE_REDIS_URL", "redis://127.0.0.1:6379/14")
RECIPIENT = "smoke-recipient@example.com"


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": list(envelope.rcpt_tos), "data": envelope.content.decode("utf8", "replace")})
        return "250 Message accepted for delivery"


def _database_recreate(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]+", name) or name in ("mcp_tools", "postgres"):
        raise RuntimeError(f"refusing to recreate database {name!r} for the smoke")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _wait(what: str, condition, *, watch: list[Process], timeout: float, interval: float = 0.3):
    """Poll ``condition`` until it returns a truthy value; fail at once if a watched process dies."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        dead = [process for process in watch if not process.alive]
        if dead:
            pytest.fail(f"while waiting for {what}:\n\n" + "\n\n".join(p.describe_death() for p in dead),
                        pytrace=False)
        try:
            last = condition()
        except (httpx.HTTPError, redis.RedisError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    logs = "\n\n".join(f"--- {p.name} ---\n{tail(p.output(), 20)}" for p in watch)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})\n{logs}", pytrace=False)


@pytest.fixture(scope="module")
def venv():
    started = time.monotonic()
    path = production_venv()
    print(f"\nproduction venv: {path} ({time.monotonic() - started:.1f}s)")
    return path


def test_procfile_processes_run_from_requirements_txt_alone(venv):
    lines = procfile()
    assert {"release", "web", "worker", "beat"} <= set(lines), lines
    _database_recreate(DATABASE_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    inbox = _Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="smoke-"))
    env = clean_environment(venv, {
        "DJANGO_SETTINGS_MODULE": "mcp_project.settings", "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "MCP_VAR_DIR": str(work),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", "MCP_DEMO_API_BASE": f"http://127.0.0.1:{port}",
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
        "MCP_WORKER_HEARTBEAT_S": "1", "MCP_WORKER_STALE_S": "5",
    })
    base = f"http://127.0.0.1:{port}"
    try:
        with processes() as running, httpx.Client(base_url=base, timeout=30) as http:
            started = time.monotonic()
            run_once("release", lines["release"], env)
            seeded = run_once("seed_demo", f"python manage.py seed_demo --api-base {base} "
                              f"--token-file {work / 'token'}", env)
            token = (work / "token").read_text().strip()
            assert token, seeded
            print(f"release + seed_demo: {time.monotonic() - started:.1f}s")

            for name in ("web", "beat"):
                running[name] = Process(name, lines[name], env)
            web = running["web"]
            ready = _wait("/health/ready to answer 200",
                          lambda: (r := http.get("/health/ready")).status_code == 200 and r.json(),
                          watch=list(running.values()), timeout=60)
            # No worker yet: readiness says so, and stays 200 (a worker outage is no reason to drop web pods).
            assert ready["checks"]["workers"].startswith("warning: no Celery worker"), ready
            assert ready["warnings"] == ["workers"], ready
            assert ready["checks"]["readonly_role"] == "ok", ready
            print(f"web ready without a worker: {json.dumps(ready)}")

            auth = {"Authorization": f"Bearer {token}"}

            def invoke(name, arguments):
                response = http.post("/mcp/v1/tools/invoke", headers=auth, json={"name": name, "arguments": arguments})
                if response.status_code != 200:
                    pytest.fail(f"{name} answered HTTP {response.status_code}: {response.text}\n"
                                f"--- last lines of `web` ---\n{tail(web.output(settle_s=0.3), 12)}", pytrace=False)
                body = response.json()
                assert body["success"] is True, body
                return body["result"]

            queued = invoke("send_notification", {"user_id": RECIPIENT, "message": "Smoke test: hello"})
            assert queued["status"] == "queued", queued
            print(f"send_notification accepted with no worker running: {queued}")

            running["worker"] = Process("worker", lines["worker"], env)
            ready = _wait("readiness to report a live worker",
                          lambda: (r := http.get("/health/ready")).status_code == 200
                          and r.json()["checks"]["workers"] == "ok" and r.json(),
                          watch=list(running.values()), timeout=60)
            assert "warnings" not in ready, ready
            _wait("the worker to deliver the queued notification to the SMTP sink",
                  lambda: any(RECIPIENT in m["to"] for m in inbox.messages), watch=list(running.values()),
                  timeout=60)
            assert "Smoke test: hello" in next(m["data"] for m in inbox.messages if RECIPIENT in m["to"])
            print("notification delivered by the worker")

            rows = invoke("database_query", {"query": "SELECT count(*) AS n FROM users"})
            assert rows[0]["n"] > 0, rows  # the REST pair answers the seed's shape: a list of row objects
            ticket = invoke("create_ticket", {"title": "Smoke", "description": "Created by the production smoke"})
            assert ticket["title"] == "Smoke", ticket
            print(f"database_query: {rows}; create_ticket: id {ticket.get('id')}")

            stdio = subprocess.run(
                ["/bin/sh", "-c", "exec python manage.py mcp_stdio"], cwd=Path(__file__).resolve().parents[2],
                env={**env, "MCP_TOKEN": token}, capture_output=True, text=True, timeout=120,
                input="\n".join(json.dumps(m) for m in (
                    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": {"name": "smoke", "version": "1"}}},
                    {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})) + "\n")
            replies = {m.get("id"): m for m in map(json.loads, filter(None, stdio.stdout.splitlines()))}
            assert 2 in replies and "result" in replies[2], (stdio.returncode, tail(stdio.stdout + stdio.stderr))
            assert "database_query" in {tool["name"] for tool in replies[2]["result"]["tools"]}
            print(f"mcp_stdio: tools/list gave {len(replies[2]['result']['tools'])} tools")

            dead = [p.describe_death() for p in running.values() if not p.alive]
            assert not dead, "\n\n".join(dead)
            print(f"web, worker and beat alive after {time.monotonic() - started:.1f}s")
    finally:
        smtp.stop()
