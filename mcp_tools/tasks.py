"""Thin Celery tasks for async tool runs: fetch by id, call a service."""
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services.tasks import MISSING_ROW_MAX_RETRIES, task_run, tasks_cleanup

logger = logging.getLogger("mcp_tools.tasks")


# Postgres unreachable (restarting, out of connections): try again later with backoff; never drop the message.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None,
             autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=60,
             retry_jitter=True)
def run_tool_task(self, task_id: str):
    """Run one async tool call. Late acks + a conditional claim: never lost, never run twice."""
    step = task_run(task_id=task_id)
    if step.retry_in_s is None:
        return step.status
    if step.status == "missing" and self.request.retries >= MISSING_ROW_MAX_RETRIES:
        logger.error("Task %s does not exist; dropping its message.", task_id)
        return "missing"
    raise self.retry(countdown=step.retry_in_s)


@shared_task(acks_late=True)
def cleanup_expired_tasks():
    """Celery beat: delete expired task results, re-enqueue lost tasks, fail abandoned ones."""
    return tasks_cleanup()
