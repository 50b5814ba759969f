"""Template tags of the MCP admin pages."""
import json

from django import template
from django.conf import settings
from django.urls import reverse

from ..models import McpEndpoint

register = template.Library()


@register.inclusion_tag("admin/mcp_tools/token_snippets.html", takes_context=True)
def token_snippets(context, token=None, secret=None):
    """How to use a freshly issued token: the URL per transport and copy-paste client configurations."""
    request = context["request"]
    token = token or context.get("token")
    secret = secret or context.get("secret") or "mcp_xxxxxxxx_…"
    base = request.build_absolute_uri("/").rstrip("/")
    mcp_url = base + "/mcp"
    endpoints = [base + str(e) for e in McpEndpoint.objects.filter(enabled=True, requires_auth=True).order_by("slug")]
    desktop = {"mcpServers": {"company-tools": {"url": mcp_url, "headers": {"Authorization": f"Bearer {secret}"}}}}
    return {
        "token": token, "secret": secret, "mcp_url": mcp_url, "sse_url": base + "/mcp/sse",
        "rest_list_url": base + "/mcp/v1/tools", "rest_invoke_url": base + "/mcp/v1/tools/invoke",
        "endpoint_urls": endpoints, "api_key_header": settings.MCP_API_KEY_HEADER,
        "desktop_json": json.dumps(desktop, indent=2),
        "admin_tokens_url": reverse("admin:mcp_tools_apitoken_changelist"),
    }
