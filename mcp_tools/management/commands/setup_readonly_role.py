"""Create or update the read-only database role the sql_query tools run as (idempotent)."""
from django.conf import settings
from django.core.management.base import BaseCommand

from ...services.readonly_role import readonly_role_setup


class Command(BaseCommand):
    help = ("Create the Postgres role sql_query tools use (LOGIN, read-only sessions, statement timeout, "
            "SELECT on MCP_SQL_READONLY_TABLES only). Safe to run again. Nothing to do on SQLite.")

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Alias of the database to grant on.")

    def handle(self, *args, database, **options):
        role = readonly_role_setup(using=database)
        if role is None:
            self.stdout.write("Embedded SQLite: sql_query tools open the database file read-only; no role needed.")
        else:
            tables = ", ".join(settings.MCP_SQL_READONLY_TABLES)
            self.stdout.write(self.style.SUCCESS(f"Read-only role '{role}' ready: SELECT on {tables}."))
