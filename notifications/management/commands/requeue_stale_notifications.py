from django.core.management.base import BaseCommand

from notifications.services import notifications_requeue_stale


class Command(BaseCommand):
    help = ("Enqueue notifications whose delivery message was lost: still 'queued' long after they were due, "
            "or 'sending' with an expired lease (their worker died). Celery beat runs this every minute.")

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=int, default=None, metavar="SECONDS",
                            help="Treat 'queued' rows due more than this long ago as lost "
                                 "(default: NOTIFICATION_STALE_S).")
        parser.add_argument("--limit", type=int, default=1000, help="At most this many per run.")

    def handle(self, *args, stale_after, limit, **options):
        if stale_after is not None and stale_after < 0:
            from django.core.management.base import CommandError
            raise CommandError("--stale-after must be 0 or more seconds.")
        count = notifications_requeue_stale(stale_after_s=stale_after, limit=limit)
        self.stdout.write(f"Re-enqueued {count} notification(s).")
