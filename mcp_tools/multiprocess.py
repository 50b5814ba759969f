"""prometheus_client multiprocess mode: one directory of value files shared by a server's processes.

Set PROMETHEUS_MULTIPROC_DIR (a directory private to one gunicorn master or one
Celery worker) before the processes start; gunicorn.conf.py and the Celery
signals call these helpers.
"""
import os
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    value = os.environ.get(ENV) or os.environ.get(ENV.lower())
    return Path(value) if value else None


def multiprocess_dir_reset() -> None:
    """Empty the directory at server start: values from a previous run must not be added in."""
    directory = multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        path.unlink(missing_ok=True)


def multiprocess_mark_dead(*, pid: int | None) -> None:
    """Drop a dead worker's live gauges (its counters stay counted)."""
    if multiprocess_dir() is not None and pid:
        multiprocess.mark_process_dead(pid)


def metrics_registry():
    """The registry to expose: every process's values in multiprocess mode, else this process's."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
