"""Serve the product: gunicorn for HTTP, plus a Celery worker when a broker is configured."""
import os
import shutil
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (gunicorn) and, with a broker configured, a Celery worker beside it."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")

    def handle(self, *args, bind, workers, threads, no_worker, **options):
        call_command("collectstatic", interactive=False, verbosity=0)
        db = "SQLite file " + str(settings.DATABASES["default"]["NAME"]) if settings.EMBEDDED_DATABASE \
            else f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} database " \
                 f"{settings.DATABASES['default']['NAME']}"
        self.stdout.write(f"Database: {db}")
        bin_dir = os.path.dirname(sys.executable)
        children = []
        if settings.CELERY_EMBEDDED:
            self.stdout.write(self.style.WARNING(
                "Celery: no CELERY_BROKER_URL or REDIS_URL set, so tasks run in-process (embedded mode)."))
        elif no_worker:
            self.stdout.write("Celery: broker configured; start workers yourself (--no-worker given).")
        else:
            self.stdout.write("Celery: broker configured; starting one worker beside the web server.")
            children.append(subprocess.Popen([os.path.join(bin_dir, "celery"), "-A", "mcp_project", "worker",
                                              "--loglevel", "INFO", "--concurrency", "2"]))
        gunicorn = shutil.which("gunicorn", path=bin_dir) or "gunicorn"
        self.stdout.write(self.style.SUCCESS(f"Serving on http://{bind}/  (admin at http://{bind}/admin/)"))
        web = subprocess.Popen([gunicorn, "mcp_project.wsgi", "--bind", bind, "--workers", str(workers),
                                "--worker-class", "gthread", "--threads", str(threads),
                                "--access-logfile", "-", "--graceful-timeout", "10"])
        children.append(web)

        def stop(signum, frame):
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            web.wait()
        finally:
            stop(None, None)
            for child in children:
                child.wait(timeout=30)
