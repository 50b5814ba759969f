from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class McpToolsConfig(AppConfig):
    default = True  # this module also holds McpAdminConfig
    name = "mcp_tools"
    verbose_name = "MCP tools"

    def ready(self):
        from .kinds import builtin  # noqa: F401  (registers the built-in handler kinds)
        from . import signals  # noqa: F401  (lookup cache invalidation)
        from . import change_signals  # noqa: F401  (the change feed of subscriptions/listen)
        from django.db.models.signals import post_migrate

        from .checks import readonly_role_after_migrate  # also registers the system checks

        post_migrate.connect(readonly_role_after_migrate, sender=self,
                             dispatch_uid="mcp_tools.readonly_role_after_migrate")
        from django.conf import settings
        from django.core.signals import request_finished

        from .services.connections import connection_log_flush_at_request_end

        if settings.MCP_CONNECTION_LOG_FLUSH_MS <= 0:  # no flusher thread: write after each response instead
            request_finished.connect(connection_log_flush_at_request_end, dispatch_uid="connections-log-flush")


class McpAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the product's site (mcp_tools/admin_site.py), imported once apps are ready."""

    default = False  # McpToolsConfig stays this module's app config
    default_site = "mcp_tools.admin_site.McpAdminSite"
