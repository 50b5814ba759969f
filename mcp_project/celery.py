import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcp_project.settings")

app = Celery("mcp_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request id carried into tasks, task outcome metrics, worker metrics in multiprocess mode.
import mcp_tools.celery_signals  # noqa: E402,F401
# Workers write a heartbeat the web tier's readiness and admin read (mcp_tools/worker_heartbeat.py).
import mcp_tools.worker_heartbeat  # noqa: E402,F401
