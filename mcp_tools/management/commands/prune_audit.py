from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...audit_retention import audit_prune


class Command(BaseCommand):
    help = ("Delete audit events older than the retention period (MCP_AUDIT_RETENTION_DAYS) in batches, "
            "optionally appending them to a JSON-lines archive first.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="Keep this many days (default: MCP_AUDIT_RETENTION_DAYS).")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--archive", metavar="FILE.jsonl", help="Append deleted events to this file first.")
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args, days, batch_size, archive, dry_run, **options):
        days = settings.MCP_AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("Retention is 0 (keep forever) or negative: give --days N with N >= 1 to prune.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = audit_prune(older_than_days=days, batch_size=batch_size, archive_path=archive, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        where = f", archived to {result.archive_path}" if result.archive_path else ""
        self.stdout.write(f"{verb} {result.deleted} audit event(s) older than {result.cutoff:%Y-%m-%d %H:%M} UTC"
                          f" in {result.batches} batch(es){where}.")
