"""What every rollout runs once before the new code serves: migrations, then the read-only SQL role."""
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Apply migrations and create or update the read-only role sql_query tools use (idempotent)."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        call_command("setup_readonly_role", verbosity=options["verbosity"])
