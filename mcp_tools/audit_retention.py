"""Audit retention: delete (optionally archive first) audit events older than N days, in batches.

Batches keep each transaction and each DELETE short, so pruning a large backlog
never locks the table for long nor builds one huge transaction.
"""
from dataclasses import dataclass
from datetime import timedelta
import json
import os
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import AuditEvent

ARCHIVE_FIELDS = [f.attname for f in AuditEvent._meta.concrete_fields]


@dataclass
class PruneResult:
    cutoff: object
    deleted: int
    batches: int
    archive_path: str = ""


def _archive(handle, rows) -> None:
    for row in rows:
        handle.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def audit_prune(*, older_than_days: int, batch_size: int = 1000, archive_path: str | Path | None = None,
                dry_run: bool = False, max_batches: int | None = None) -> PruneResult:
    """Delete audit events created more than ``older_than_days`` days ago.

    With ``archive_path`` each batch is appended to that JSON-lines file (and
    synced to disk) before it is deleted: a crash between the two can leave a
    row both archived and present, never deleted without its archive line.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    old = AuditEvent.objects.filter(created_at__lt=cutoff)
    if dry_run:
        return PruneResult(cutoff=cutoff, deleted=old.count(), batches=0)
    handle = open(archive_path, "a", encoding="utf-8") if archive_path else None
    deleted = batches = 0
    try:
        while max_batches is None or batches < max_batches:
            with transaction.atomic():
                rows = list(old.order_by("created_at", "pk").values(*ARCHIVE_FIELDS)[:batch_size])
                if not rows:
                    break
                if handle is not None:
                    _archive(handle, rows)
                count, _ = AuditEvent.objects.filter(pk__in=[row["id"] for row in rows]).delete()
            deleted += count
            batches += 1
    finally:
        if handle is not None:
            handle.close()
    return PruneResult(cutoff=cutoff, deleted=deleted, batches=batches, archive_path=str(archive_path or ""))


@shared_task(ignore_result=True)
def prune_audit_events() -> int:
    """Beat job: apply MCP_AUDIT_RETENTION_DAYS (0 keeps everything)."""
    days = settings.MCP_AUDIT_RETENTION_DAYS
    if not days:
        return 0
    archive = None
    if settings.MCP_AUDIT_ARCHIVE_DIR:
        directory = Path(settings.MCP_AUDIT_ARCHIVE_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        archive = directory / f"audit-{timezone.now():%Y%m%d}.jsonl"
    return audit_prune(older_than_days=days, archive_path=archive).deleted
