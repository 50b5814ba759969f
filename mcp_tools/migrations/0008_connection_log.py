"""The Connections page: refused requests and connected clients; support staff may read both."""
import django.utils.timezone
from django.db import migrations, models

GROUP = "Support staff"
VIEW = ("view_connectionrefusal", "view_clientconnection")


def grant_view(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure these exist now.
    app_config = apps.get_app_config("mcp_tools")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.add(*apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="mcp_tools", codename__in=VIEW))


def revoke_view(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="mcp_tools", codename__in=VIEW))


class Migration(migrations.Migration):

    dependencies = [
        ('mcp_tools', '0007_mcpendpoint_page_size'),
        ("tickets", "0002_support_staff_group"),  # makes the group
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name='ConnectionRefusal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('first_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('count', models.PositiveIntegerField(default=1)),
                ('reason', models.CharField(db_index=True, max_length=40)),
                ('http_status', models.PositiveSmallIntegerField(default=0)),
                ('transport', models.CharField(help_text='streamable-http, http+sse, rest, oauth …', max_length=24)),
                ('method', models.CharField(blank=True, max_length=8)),
                ('path', models.CharField(max_length=200)),
                ('client_ip', models.GenericIPAddressField(blank=True, null=True)),
                ('token_prefix', models.CharField(blank=True, help_text='Token prefix or OAuth client; never a secret.', max_length=40)),
                ('client_name', models.CharField(blank=True, max_length=100)),
                ('client_version', models.CharField(blank=True, max_length=40)),
                ('detail', models.CharField(blank=True, help_text='The message the client was sent.', max_length=300)),
            ],
            options={
                'verbose_name': 'refused connection',
                'verbose_name_plural': 'connections',
                'ordering': ['-last_at'],
            },
        ),
        migrations.CreateModel(
            name='ClientConnection',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('credential', models.CharField(blank=True, help_text='Token prefix or OAuth client; empty: public.', max_length=40)),
                ('client_name', models.CharField(blank=True, max_length=100)),
                ('transport', models.CharField(max_length=24)),
                ('client_version', models.CharField(blank=True, max_length=40)),
                ('protocol_version', models.CharField(blank=True, max_length=16)),
                ('client_ip', models.GenericIPAddressField(blank=True, null=True)),
                ('first_seen', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_seen', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': 'connected client',
                'ordering': ['-last_seen'],
                'constraints': [models.UniqueConstraint(fields=('credential', 'client_name', 'transport'), name='client_connection_unique')],
            },
        ),
        migrations.RunPython(grant_view, revoke_view),
    ]
