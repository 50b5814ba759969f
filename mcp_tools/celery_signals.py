"""Carry the HTTP request id into Celery tasks, and count task outcomes.

Connected from mcp_project/celery.py, so every task of every app gets it without
a special base class: the publisher stamps the current request id into the
message headers; the worker sets it as the current request id while the task
runs, so its log lines and the audit events it writes carry the same id.
"""
from celery import signals

from .metrics import metrics_record_task_outcome
from .request_context import new_request_id, reset_request_id, set_request_id, get_request_id

HEADER = "mcp_request_id"
_tokens: dict[str, object] = {}


@signals.before_task_publish.connect
def _stamp_request_id(sender=None, headers=None, **kwargs):
    request_id = get_request_id()
    if headers is not None and request_id != "-" and HEADER not in headers:
        headers[HEADER] = request_id


def _request_id_of(task) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, HEADER, None)
    if not value and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get(HEADER)
    return value


@signals.task_prerun.connect
def _enter_request_id(task_id=None, task=None, **kwargs):
    # A task published outside any request gets an id of its own, so its lines still group.
    _tokens[task_id] = set_request_id(new_request_id(_request_id_of(task)))


@signals.task_postrun.connect
def _leave_request_id(task_id=None, **kwargs):
    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            reset_request_id(token)
        except ValueError:  # set in another context (should not happen); leave it
            pass


@signals.task_success.connect
def _count_success(sender=None, **kwargs):
    metrics_record_task_outcome(task_name=getattr(sender, "name", ""), outcome="success")


@signals.task_failure.connect
def _count_failure(sender=None, **kwargs):
    metrics_record_task_outcome(task_name=getattr(sender, "name", ""), outcome="failure")


@signals.task_retry.connect
def _count_retry(sender=None, **kwargs):
    metrics_record_task_outcome(task_name=getattr(sender, "name", ""), outcome="retry")


@signals.task_rejected.connect
def _count_rejected(sender=None, message=None, **kwargs):
    metrics_record_task_outcome(task_name="(unknown)", outcome="rejected")


@signals.task_revoked.connect
def _count_revoked(sender=None, request=None, **kwargs):
    metrics_record_task_outcome(task_name=getattr(sender, "name", ""), outcome="revoked")


# --- Worker metrics in multiprocess mode -------------------------------------------------
# Prefork children each write their own files under PROMETHEUS_MULTIPROC_DIR; the
# worker's main process serves their sum on CELERY_METRICS_PORT (off when 0).

@signals.worker_init.connect
def _clear_multiprocess_dir(**kwargs):
    from .multiprocess import multiprocess_dir_reset

    multiprocess_dir_reset()


@signals.worker_ready.connect
def _serve_worker_metrics(**kwargs):
    from django.conf import settings

    from .multiprocess import metrics_registry

    port = getattr(settings, "CELERY_METRICS_PORT", 0)
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr=settings.CELERY_METRICS_ADDR, registry=metrics_registry())


@signals.worker_process_shutdown.connect
def _forget_dead_child(pid=None, **kwargs):
    from .multiprocess import multiprocess_mark_dead

    multiprocess_mark_dead(pid=pid)
