from django.core.management.base import BaseCommand

from mcp_tools.services.tasks import tasks_cleanup


class Command(BaseCommand):
    help = ("Delete async tool tasks whose results expired (ttl), re-enqueue tasks whose message was lost and "
            "mark tasks whose worker died as failed. Celery beat runs this every five minutes.")

    def handle(self, *args, **options):
        counts = tasks_cleanup()
        self.stdout.write("Deleted {deleted} expired task(s), re-enqueued {requeued}, "
                          "marked {lost} abandoned task(s) failed.".format(**counts))
