"""Create demo data. Safe to run again: it only adds what is missing."""
import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from mcp_tools.models import ApiToken
from mcp_tools.services.tokens import token_issue

from ...seed import default_internal_api_base, seed_company, seed_resources_and_prompts, seed_tools

DEMO_TOKEN_NAME = "demo"


class Command(BaseCommand):
    help = "Load demo company data, the seed's tools, an admin, a support user and a demo API token."

    def add_arguments(self, parser):
        parser.add_argument("--api-base", default=default_internal_api_base(),
                            help="Base URL of this server, for the demo internal-API tools.")
        parser.add_argument("--token-file", default=str(settings.VAR_DIR / "demo_token"),
                            help="Also write a newly issued demo token here (mode 0600); '' to skip.")
        parser.add_argument("--new-token", action="store_true", help="Issue another demo token.")

    def handle(self, *args, api_base, token_file, new_token, **options):
        with transaction.atomic():
            seed_company()
            seed_tools(api_base)
            seed_resources_and_prompts()
            credentials = self._users()
            secret = None
            if new_token or not ApiToken.objects.filter(name=DEMO_TOKEN_NAME, revoked_at__isnull=True).exists():
                secret = token_issue(name=DEMO_TOKEN_NAME, all_tools=True).secret
        for username, password in credentials:
            self.stdout.write(self.style.SUCCESS(f"Created {username!r} with password: {password}  (shown once)"))
        if secret:
            self.stdout.write(self.style.SUCCESS(f"Demo API token (shown once): {secret}"))
            if token_file:
                fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(secret + "\n")
                self.stdout.write(f"The token is also in {token_file} (readable only by you).")
        else:
            self.stdout.write("Demo data present; the demo token was shown when it was issued "
                              "(use --new-token for another).")

    def _users(self):
        User = get_user_model()
        created = []
        if not User.objects.filter(username="admin").exists():
            password = os.environ.get("MCP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@example.com", password)
            created.append(("admin", password))
        if not User.objects.filter(username="support").exists():
            password = os.environ.get("MCP_SUPPORT_PASSWORD") or secrets.token_urlsafe(12)
            user = User.objects.create_user("support", "support@example.com", password, is_staff=True)
            user.groups.add(Group.objects.get(name="Support staff"))
            created.append(("support", password))
        return created
