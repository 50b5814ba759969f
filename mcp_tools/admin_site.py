"""The admin site: the product's pages first, a title that fits who is logged in, "View site" to the dashboard."""
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.urls import reverse

from .admin_warnings import admin_warnings

# Apps and models in the order people look for them; anything unlisted follows, alphabetically.
APP_ORDER = ["mcp_tools", "tickets", "notifications", "demo_company"]
MODEL_ORDER = {"mcp_tools": ["Tool", "ApiToken", "AuditEvent", "ToolTask", "McpEndpoint", "McpSession", "Resource",
                             "Prompt"]}


def _rank(order: list[str], name: str) -> tuple[int, str]:
    return (order.index(name), name) if name in order else (len(order), name)


class McpAdminSite(AdminSite):
    site_header = "MCP tool server"
    site_title = "MCP tool server"
    # The lists need the width (1280 px screens): navigation is the start page and the breadcrumbs.
    enable_nav_sidebar = False

    @property
    def site_url(self):
        return reverse("mcp-dashboard")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        apps.sort(key=lambda app: _rank(APP_ORDER, app["app_label"]))
        for app in apps:
            order = MODEL_ORDER.get(app["app_label"], [])
            app["models"].sort(key=lambda model: _rank(order, model["object_name"]))
        return apps

    def index(self, request, extra_context=None):
        user = request.user
        if user.has_perm("mcp_tools.view_tool") or user.has_perm("mcp_tools.change_tool"):
            title = "Tools, tokens and the audit trail"
        elif user.has_perm("tickets.view_ticket"):
            title = "Support desk: tickets, notifications and the audit trail"
        else:
            title = "Site administration"
        for warning in admin_warnings():
            messages.warning(request, warning)
        context = {"title": title, "dashboard_allowed": user.has_perm("mcp_tools.view_auditevent"),
                   **(extra_context or {})}
        return super().index(request, context)
