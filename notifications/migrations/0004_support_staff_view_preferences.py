"""Let support staff read (not change) recipients' notification preferences.

They answer "why did I not get the e-mail?": the preference is the answer. Changing what a
recipient accepts stays with admins.
"""
from django.db import migrations

GROUP = "Support staff"


def grant_view(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure this one exists now.
    app_config = apps.get_app_config("notifications")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is None:
        return
    group.permissions.add(apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="notifications", codename="view_notificationpreference"))


def revoke_view(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="notifications", codename="view_notificationpreference"))


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_recipient_preferences"),
        ("tickets", "0002_support_staff_group"),  # makes the group
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_view, revoke_view)]
