"""Create the 'Support staff' group with only what support work needs.

Support staff work tickets and their comments, read notifications (and resend
failed ones) and read the audit log. They get nothing on tools or tokens.
"""
from django.db import migrations

GROUP = "Support staff"
PERMISSIONS = {
    ("tickets", "ticket"): ("view", "change"),
    ("tickets", "ticketcomment"): ("view", "add", "change"),
    ("notifications", "notification"): ("view", "change"),
    ("mcp_tools", "auditevent"): ("view",),
}


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure they exist now.
    for app_label in ("tickets", "notifications", "mcp_tools"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    wanted = []
    for (app_label, model), actions in PERMISSIONS.items():
        for action in actions:
            wanted.append(Permission.objects.get(content_type__app_label=app_label,
                                                 codename=f"{action}_{model}"))
    group.permissions.set(wanted)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0001_initial"),
        ("notifications", "0001_initial"),
        ("mcp_tools", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
