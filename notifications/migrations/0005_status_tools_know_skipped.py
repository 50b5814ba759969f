"""Existing get_notification_status tools learn the new 'skipped' status.

Their output schema (from the seed, or copied from it) lists the statuses a notification can
have; without 'skipped' the pipeline would refuse the result of a skipped notification (502).
Only schemas that enumerate statuses and lack 'skipped' are touched.
"""
from django.db import migrations


def add_skipped(apps, schema_editor):
    Tool = apps.get_model("mcp_tools", "Tool")
    for tool in Tool.objects.filter(kind="get_notification_status"):
        schema = tool.output_schema if isinstance(tool.output_schema, dict) else {}
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        status = properties.get("status") if isinstance(properties.get("status"), dict) else {}
        enum = status.get("enum")
        if not isinstance(enum, list) or "skipped" in enum:
            continue
        status["enum"] = [*enum, "skipped"]
        properties.setdefault("skip_reason", {"type": "string"})
        tool.save(update_fields=["output_schema"])


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_support_staff_view_preferences"),
        ("mcp_tools", "0004_task_progress"),
    ]

    operations = [migrations.RunPython(add_skipped, migrations.RunPython.noop)]
