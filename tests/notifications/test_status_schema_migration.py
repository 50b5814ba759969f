"""Migration notifications/0005: status tools made before 'skipped' existed learn it, others are left alone."""
from importlib import import_module

from django.apps import apps
import pytest

from mcp_tools.models import Tool

migration = import_module("notifications.migrations.0005_status_tools_know_skipped")
OLD = {"type": "object", "properties": {"status": {"enum": ["queued", "sending", "sent", "failed"]}}}


@pytest.mark.django_db
def test_old_status_schemas_gain_skipped_and_nothing_else_changes():
    old = Tool.objects.create(name="status_old", description="d", kind="get_notification_status", output_schema=OLD)
    free = Tool.objects.create(name="status_free", description="d", kind="get_notification_status",
                               output_schema={"type": "object"})
    echo = Tool.objects.create(name="echo_enum", description="d", kind="echo", output_schema=OLD)

    migration.add_skipped(apps, None)
    migration.add_skipped(apps, None)  # running twice changes nothing more

    old.refresh_from_db(), free.refresh_from_db(), echo.refresh_from_db()
    assert old.output_schema["properties"]["status"]["enum"] == ["queued", "sending", "sent", "failed", "skipped"]
    assert old.output_schema["properties"]["skip_reason"] == {"type": "string"}
    assert free.output_schema == {"type": "object"}
    assert echo.output_schema == OLD
