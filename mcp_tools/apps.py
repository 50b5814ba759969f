from django.apps import AppConfig


class McpToolsConfig(AppConfig):
    name = "mcp_tools"
    verbose_name = "MCP tools"

    def ready(self):
        from .kinds import builtin  # noqa: F401  (registers the built-in handler kinds)
        from . import signals  # noqa: F401  (lookup cache invalidation)
        from . import change_signals  # noqa: F401  (the change feed of subscriptions/listen)
