"""Read-only queries."""
from .models import ApiToken, Tool
from .services.principals import ALL_TOOLS_SCOPE, TOOL_SCOPE_PREFIX, oauth_scopes
from .services.tokens import allowed_tool_ids


def tools_for_token(token) -> list[Tool]:
    """Enabled tools the credential (API token or OAuth access token) may call, in a stable order."""
    tools = Tool.objects.filter(enabled=True).order_by("name")
    if token is None:
        return []
    if not isinstance(token, ApiToken):
        scopes = oauth_scopes(token)
        if ALL_TOOLS_SCOPE in scopes:
            return list(tools)
        names = [s[len(TOOL_SCOPE_PREFIX):] for s in scopes if s.startswith(TOOL_SCOPE_PREFIX)]
        return list(tools.filter(name__in=names))
    if not token.all_tools:
        tools = tools.filter(pk__in=allowed_tool_ids(token))
    return list(tools)
