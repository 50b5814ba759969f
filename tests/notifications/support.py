"""Processes and servers the notification and task tests start themselves (all on 127.0.0.1)."""
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import hashlib
import hmac
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from django.conf import settings
from django.db import connection

from tests.helpers import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent.parent


def worker_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class RedisServer:
    """A private redis-server on a free port, so a test can stop and start it (never the machine's Redis)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=10)
        return self

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self):
        """SIGSTOP: the server hangs (the kernel still accepts connections; nothing answers)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self):
        """SIGKILL: the server is gone at once, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self):
        self.thaw()  # a stopped process cannot handle SIGTERM
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class WorkerProcess:
    """A `celery worker` process in its own process group, so the test can SIGKILL all of it."""

    def __init__(self, *, broker_url: str, database_url: str, extra_env: dict | None = None, concurrency: int = 1,
                 settings_module: str = "tests.notifications.worker_settings"):
        self.node = f"killable-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.log = tempfile.NamedTemporaryFile(prefix="celery-killable-", suffix=".log", delete=False)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url,
               "REDIS_URL": broker_url, "CELERY_BROKER_URL": broker_url, "PYTHONUNBUFFERED": "1",
               **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mcp_project", "worker", "--loglevel", "INFO",
             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", self.node],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout=60):
        wait_until(lambda: self.process.poll() is not None or "ready." in Path(self.log.name).read_text(),
                   timeout=timeout)
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited early; see {self.log.name}")
        return self

    def kill(self):
        """SIGKILL the whole worker (main process and pool children), like a machine dying."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def valid_signature(headers: dict, body: bytes) -> bool:
    timestamp = headers.get("X-MCP-Timestamp", "")
    expected = hmac.new(settings.MCP_WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-MCP-Signature", ""), f"sha256={expected}")


class WebhookReceiver:
    """A webhook endpoint whose answers follow a script: a list of statuses, then 200 for ever.

    A status of "block" holds the request open until the client goes away (its worker was
    killed); such a request is recorded as aborted, not delivered. Every request is kept
    in ``hits``; ``delivered`` lists the ones answered 2xx to a client still connected.
    """

    def __init__(self, script=()):
        self.script = list(script)
        self.hits, self.delivered, self.aborted = [], [], []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hit = {"headers": dict(self.headers), "body": body, "time": time.monotonic()}
                with outer.lock:
                    outer.hits.append(hit)
                    action = outer.script.pop(0) if outer.script else 200
                if action == "block":
                    outer._wait_for_disconnect(self.connection)
                    outer.aborted.append(hit)
                    return
                self.send_response(action)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if 200 <= action < 300:
                    outer.delivered.append(hit)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _wait_for_disconnect(sock, timeout=120):
        sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.server.shutdown()
        self.server.server_close()
