#!/usr/bin/env python
"""Measure notification throughput: a burst of send_notification calls, delivered by 1, then 2 worker processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mcp_scratch REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python scripts/notification_burst.py --count 1000 --workers 1 2

Use a scratch database and Redis db: the script migrates the database, purges the
Celery queue and adds a 'burst_notify' tool and a token. Mail goes to a local SMTP
sink the script runs on 127.0.0.1; nothing leaves the machine. For each worker
count it prints how fast the calls were accepted (tool_invoke in-process, the same
pipeline the HTTP endpoints use) with no worker competing for the CPU, then how
fast the workers delivered them (first to last ``sent_at``), and checks that every
notification arrived exactly once.
"""
import argparse
import email
import os
from pathlib import Path
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcp_project.settings")


class Sink:
    """Counts accepted messages per X-Notification-Id."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        notification_id = email.message_from_bytes(envelope.content)["X-Notification-Id"]
        with self.lock:
            self.counts[notification_id] = self.counts.get(notification_id, 0) + 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(count: int, smtp_port: int, log_dir: str) -> list[subprocess.Popen]:
    env = {**os.environ, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_port),
           "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "LOG_LEVEL": "WARNING"}
    workers = []
    for index in range(count):
        log = open(Path(log_dir) / f"worker-{count}-{index}.log", "w")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mcp_project", "worker", "--loglevel", "WARNING",
             "--concurrency", "1", "--without-gossip", "--without-mingle", "-n", f"burst{index}-{os.getpid()}@localhost"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return workers


def wait_ready(app, workers, timeout=60):
    names = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        names = {name for reply in replies for name in reply if f"-{os.getpid()}@" in name}
        if len(names) >= len(workers):
            return
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("a worker exited early; see its log")
    raise SystemExit(f"workers not ready after {timeout}s (ready: {names})")


def run(count: int, worker_count: int, caller, sink: Sink, smtp_port: int, log_dir: str) -> dict:
    """Accept ``count`` calls with no worker running, then let ``worker_count`` workers drain them."""
    from django.db.models import Max, Min

    from mcp_project.celery import app
    from mcp_tools.services.invocation import tool_invoke
    from notifications.models import Notification

    app.control.purge()
    started = time.perf_counter()
    ids = []
    for i in range(count):
        invocation = tool_invoke(name="burst_notify", caller=caller,
                                 arguments={"user_id": f"burst{i}@example.com", "message": f"Burst {i}"})
        if not invocation.ok:
            raise SystemExit(f"call {i} failed: {invocation.message}")
        ids.append(invocation.result["notification_id"])
    accept_s = time.perf_counter() - started
    workers = start_workers(worker_count, smtp_port, log_dir)
    try:
        wait_ready(app, workers)
        deadline = time.monotonic() + 900
        while Notification.objects.filter(pk__in=ids, status="sent").count() < count:
            if Notification.objects.filter(pk__in=ids, status="failed").exists():
                raise SystemExit("some notifications failed; see the admin")
            if time.monotonic() > deadline:
                raise SystemExit("not all delivered within 15 minutes")
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    window = Notification.objects.filter(pk__in=ids).aggregate(first=Min("sent_at"), last=Max("sent_at"))
    wanted = {str(pk) for pk in ids}
    with sink.lock:
        arrived = {key: n for key, n in sink.counts.items() if key in wanted}
    return {
        "workers": worker_count,
        "recorded": Notification.objects.filter(pk__in=ids).count(),
        "arrived": len(arrived),
        "duplicates": sum(n - 1 for n in arrived.values()),
        "accept_s": accept_s,
        "deliver_s": (window["last"] - window["first"]).total_seconds(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL")):
        raise SystemExit("Set DATABASE_URL and REDIS_URL (a scratch database and Redis db).")

    import logging

    import django
    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    from aiosmtpd.controller import Controller
    from django.core.management import call_command

    from mcp_tools.models import Tool
    from mcp_tools.services.invocation import Caller
    from mcp_tools.services.tokens import token_issue
    from mcp_tools.services.tools import tool_save

    call_command("migrate", verbosity=0)
    if not Tool.objects.filter(name="burst_notify").exists():
        tool_save(tool=Tool(name="burst_notify", description="Burst test notifications", kind="send_notification",
                            config={"channel": "email", "subject": "Burst"},
                            input_schema={"type": "object", "required": ["user_id", "message"],
                                          "properties": {"user_id": {"type": "string"},
                                                         "message": {"type": "string"}}}))
    caller = Caller(token=token_issue(name="burst", all_tools=True, rate_limit="100000/m").token, transport="script")
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    log_dir = tempfile.mkdtemp(prefix="notification-burst-")
    try:
        print(f"{args.count} notifications per run; cpu cores: {os.cpu_count()}; worker logs in {log_dir}")
        print(f"{'workers':>7} {'recorded':>8} {'arrived':>7} {'dupes':>5} {'accept s':>8} {'calls/s':>8} "
              f"{'deliver s':>9} {'delivered/s':>11}")
        for worker_count in args.workers:
            r = run(args.count, worker_count, caller, sink, controller.port, log_dir)
            print(f"{r['workers']:>7} {r['recorded']:>8} {r['arrived']:>7} {r['duplicates']:>5} "
                  f"{r['accept_s']:>8.1f} {args.count / r['accept_s']:>8.0f} {r['deliver_s']:>9.1f} "
                  f"{(args.count - 1) / r['deliver_s']:>11.0f}")
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
