"""gunicorn settings for production (see Procfile). Everything tunable comes from the environment.

Several workers share metrics through prometheus_client's multiprocess mode: each
worker writes its values to files in PROMETHEUS_MULTIPROC_DIR, /metrics adds them
up, and a worker's files are marked dead when it exits.
"""
import os
from pathlib import Path
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Chosen by measurement (README, "Choosing the server"): gthread runs the sync pipeline 2.5-3x faster than
# ASGI here, and a held SSE reply occupies one thread, so threads are sized above the expected streams.
# Each thread keeps its own database connection (DB_CONN_MAX_AGE): budget Postgres max_connections for
# replicas x workers x threads, or put PgBouncer in front.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (jittered so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))
# The app writes one JSON line per request (mcp_tools.access); gunicorn's own access log would duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Headers and request line limits (defence against oversized requests before Django sees them).
limit_request_line = 8190
limit_request_fields = 100

# Multiprocess metrics: a private directory per gunicorn master unless one is given.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tempfile.gettempdir()) / f"mcp-prometheus-{os.getpid()}")


def on_starting(server):
    from mcp_tools.multiprocess import multiprocess_dir_reset

    multiprocess_dir_reset()


def post_worker_init(worker):
    # Held streams are capped below this worker's threads, keeping some for /health and ordinary calls.
    from mcp_tools.transports.held_streams import held_streams_configure

    held_streams_configure(threads=worker.cfg.threads)


def child_exit(server, worker):
    from mcp_tools.multiprocess import multiprocess_mark_dead

    multiprocess_mark_dead(pid=worker.pid)
