"""Ticket notes are append-only: support staff may add notes, no longer change them."""
from django.db import migrations

GROUP = "Support staff"


def drop_change_permission(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="tickets",
                                                            codename="change_ticketcomment"))


def restore_change_permission(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.add(*Permission.objects.filter(content_type__app_label="tickets",
                                                         codename="change_ticketcomment"))


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_support_staff_group")]
    operations = [migrations.RunPython(drop_change_permission, restore_change_permission)]
