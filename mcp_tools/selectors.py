"""Read-only queries."""
from .models import Tool
from .services.tokens import allowed_tool_ids


def tools_for_token(token) -> list[Tool]:
    """Enabled tools the token may call, in a stable order."""
    tools = Tool.objects.filter(enabled=True).order_by("name")
    if token is None:
        return []
    if not token.all_tools:
        tools = tools.filter(pk__in=allowed_tool_ids(token))
    return list(tools)
