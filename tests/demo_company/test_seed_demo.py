from django.contrib.auth import get_user_model
from django.core.management import call_command
import pytest

from mcp_tools.models import ApiToken, Tool
from mcp_tools.services.tokens import token_authenticate

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_credentials_once(tmp_path, capsys):
    token_file = tmp_path / "token"
    call_command("seed_demo", token_file=str(token_file))
    first = capsys.readouterr().out
    secret = token_file.read_text().strip()
    assert f"Demo API token (shown once): {secret}" in first
    assert "Created 'admin' with password" in first
    assert token_authenticate(raw=secret).name == "demo"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    counts = (Tool.objects.count(), ApiToken.objects.count(), get_user_model().objects.count())

    call_command("seed_demo", token_file=str(tmp_path / "again"))
    second = capsys.readouterr().out
    assert "password" not in second and "mcp_" not in second
    assert (Tool.objects.count(), ApiToken.objects.count(), get_user_model().objects.count()) == counts
    assert {"database_query", "get_customer_by_email", "send_notification", "create_ticket", "crm_lookup",
            "billing_invoice", "onboard_customer"} <= set(Tool.objects.values_list("name", flat=True))
    support = get_user_model().objects.get(username="support")
    assert support.is_staff and not support.is_superuser
    assert list(support.groups.values_list("name", flat=True)) == ["Support staff"]
