import json

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from django.template.response import TemplateResponse
from django.urls import path, reverse

from . import connections_admin  # noqa: F401  (registers the Connections page)
from .audit_export import AuditCsvExportMixin
from .admin_login import throttle_admin_login
from .forms import ApiTokenAdminForm, ToolAdminForm
from .models import ApiToken, AuditEvent, McpEndpoint, McpSession, Prompt, Resource, Tool, ToolRevision, ToolTask
from .kinds.base import get_kind
from .services.secret_config import config_masked
from .services.tasks import tasks_cancel_by_admin
from .services.tokens import token_assign_secret, token_revoke
from .services.tools import tool_save, tools_set_enabled


class ToolRevisionInline(admin.TabularInline):
    model = ToolRevision
    extra = 0
    can_delete = False
    fields = ("version", "name", "description", "changed_by", "created_at")
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


def _derives_schemas(tool) -> bool:
    kind = get_kind(tool.kind)
    return kind is not None and kind.derives_schemas


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolAdminForm
    list_display = ("name", "title", "kind", "enabled", "execution", "rate_limit", "version", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("enabled", "kind", "execution")
    search_fields = ("name", "title", "description")
    readonly_fields = ("version", "created_at", "updated_at")
    actions = ("enable_tools", "disable_tools")
    inlines = (ToolRevisionInline,)
    fieldsets = (
        (None, {"fields": ("name", "title", "description", "enabled")}),
        ("Schemas", {"fields": ("input_schema", "output_schema", "annotations")}),
        ("Handler", {"fields": ("kind", "config", "execution", "timeout_s")}),
        ("Governance", {"fields": ("rate_limit", "requires_confirmation", "sensitive_fields")}),
        ("History", {"fields": ("version", "created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None or not _derives_schemas(obj):
            return self.fieldsets
        # Generated from the config (model query): shown, not edited, so they cannot drift from it.
        return tuple(
            (title, {"fields": ("generated_input_schema", "generated_output_schema", "annotations")})
            if title == "Schemas" else (title, options) for title, options in self.fieldsets)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "generated_input_schema", "generated_output_schema") if obj and _derives_schemas(obj) \
            else fields

    @admin.display(description="Input schema (generated from the config)")
    def generated_input_schema(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.input_schema, indent=2))

    @admin.display(description="Output schema (generated from the config)")
    def generated_output_schema(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.output_schema, indent=2))

    def get_object(self, request, object_id, from_field=None):
        tool = super().get_object(request, object_id, from_field)
        if tool is not None and not self.has_change_permission(request, tool):
            # View-only staff see the config read-only: never with its upstream secrets.
            tool.config = config_masked(get_kind(tool.kind), tool.config or {})
        return tool

    def save_model(self, request, obj, form, change):
        tool_save(tool=obj, changed_by=request.user)

    @admin.action(description="Enable selected tools", permissions=["change"])
    def enable_tools(self, request, queryset):
        count = tools_set_enabled(queryset=queryset, enabled=True)
        self.message_user(request, f"Enabled {count} tool(s).", messages.SUCCESS)

    @admin.action(description="Disable selected tools", permissions=["change"])
    def disable_tools(self, request, queryset):
        count = tools_set_enabled(queryset=queryset, enabled=False)
        self.message_user(request, f"Disabled {count} tool(s).", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenAdminForm
    list_display = ("name", "prefix", "owner", "all_tools", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("all_tools", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "owner__username")
    filter_horizontal = ("allowed_tools",)
    readonly_fields = ("prefix", "revoked_at", "last_used_at", "created_at")
    actions = ("revoke_tokens",)

    def get_fields(self, request, obj=None):
        fields = list(ApiTokenAdminForm.Meta.fields)
        return fields + list(self.readonly_fields) if obj else fields

    # The one-time secret waits in the admin's own session between the POST that created the token
    # and the GET that shows it (post/redirect/get): reloading the page neither issues a second
    # token nor shows the secret again.
    _CREATED_SESSION_KEY = "mcp_tools.token_created"

    def get_urls(self):
        created = path("<int:token_id>/created/", self.admin_site.admin_view(self.created_view),
                       name="mcp_tools_apitoken_created")
        return [created, *super().get_urls()]

    def save_model(self, request, obj, form, change):
        if not change:
            request._issued_secret = token_assign_secret(token=obj)
        obj.save()

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_issued_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        request.session[self._CREATED_SESSION_KEY] = {"token_id": obj.pk, "secret": secret}
        return HttpResponseRedirect(reverse("admin:mcp_tools_apitoken_created", args=[obj.pk]))

    def created_view(self, request, token_id):
        """Show a new token's secret once; afterwards the page only says it was shown."""
        token = ApiToken.objects.filter(pk=token_id).first()
        if token is None or not self.has_view_permission(request, token):
            return HttpResponseRedirect(reverse("admin:mcp_tools_apitoken_changelist"))
        pending = request.session.get(self._CREATED_SESSION_KEY) or {}
        secret = None
        if pending.get("token_id") == token.pk:
            secret = pending["secret"]
            del request.session[self._CREATED_SESSION_KEY]
        context = {**self.admin_site.each_context(request), "token": token, "secret": secret,
                   "opts": self.model._meta, "title": "API token created"}
        response = TemplateResponse(request, "admin/mcp_tools/token_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(AuditCsvExportMixin, admin.ModelAdmin):
    list_display = ("created_at", "tool_name", "outcome", "error_code", "token_prefix", "transport",
                    "duration_ms", "client_ip", "request_id")
    list_filter = ("outcome", "tool_name", "transport", "token", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("tool_name", "request_id", "token_prefix", "error_message")
    list_select_related = ("token",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ToolTask)
class ToolTaskAdmin(admin.ModelAdmin):
    """Async tool runs, read-only (arguments are not shown: the audit log keeps a redacted copy)."""

    list_display = ("id", "tool_name", "status", "status_message", "token", "user", "attempts", "created_at",
                    "finished_at", "expires_at")
    list_filter = ("status", "tool_name", "created_at")
    search_fields = ("id", "tool_name", "request_id")
    date_hierarchy = "created_at"
    list_select_related = ("token", "user")
    exclude = ("arguments",)
    actions = ["cancel_tasks"]

    @admin.action(description="Cancel the selected unfinished tasks", permissions=["cancel"])
    def cancel_tasks(self, request, queryset):
        count = tasks_cancel_by_admin(task_ids=queryset.values_list("pk", flat=True), user=request.user)
        self.message_user(request, f"Cancelled {count} task(s); finished ones were left as they are.",
                          messages.SUCCESS if count else messages.WARNING)

    def has_cancel_permission(self, request):
        # The rows stay read-only (has_change_permission is False); stopping a run is an admin's call.
        return request.user.has_perm("mcp_tools.change_tooltask")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "arguments"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("uri", "name", "mime_type", "enabled", "updated_at")
    list_editable = ("enabled",)
    search_fields = ("uri", "name", "description")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "enabled", "updated_at")
    list_editable = ("enabled",)
    search_fields = ("name", "title", "description")


@admin.register(McpEndpoint)
class McpEndpointAdmin(admin.ModelAdmin):
    """Named MCP servers at /mcp/<slug>: which tools, resources and prompts, and whether a token is needed."""

    list_display = ("__str__", "name", "requires_auth", "all_tools", "enabled", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("requires_auth", "enabled")
    search_fields = ("slug", "name", "description")
    filter_horizontal = ("tools", "resources", "prompts")
    fieldsets = (
        (None, {"fields": ("slug", "name", "description", "instructions", "enabled", "requires_auth")}),
        ("Tools", {"fields": ("all_tools", "tools"),
                   "description": "Callers still only see the tools their own token allows."}),
        ("Resources and prompts", {"fields": ("all_resources", "resources", "all_prompts", "prompts")}),
    )


@admin.register(McpSession)
class McpSessionAdmin(admin.ModelAdmin):
    """Handshake-era MCP sessions, read-only; delete one to end it at once."""

    list_display = ("id", "endpoint", "principal", "client_name", "protocol_version", "created_at",
                    "last_seen_at", "ended_at")
    list_filter = ("endpoint", "protocol_version", "ended_at")
    search_fields = ("id", "client_name", "principal")
    exclude = ("state",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "state"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def admin_warnings() -> list[str]:
    """Problems an administrator must see on the admin index: no worker for tools that need one, no SQL role."""
    from django.db import DatabaseError
    import redis

    from .services.readonly_role import readonly_role_problem
    from .worker_heartbeat import tools_needing_worker, workers_alive, workers_expected

    found = []
    if workers_expected():
        try:
            alive = workers_alive()
        except redis.RedisError:
            alive = None  # Redis down: readiness reports it; say nothing about workers we cannot see
        if alive == []:
            tools = tools_needing_worker()
            if tools:
                shown = ", ".join(tools[:8]) + (", ..." if len(tools) > 8 else "")
                found.append(f"No Celery worker has reported in the last {settings.MCP_WORKER_STALE_S}s. "
                             f"Calls to {shown} are accepted and queued, but nothing runs them until a worker "
                             "is started (`celery -A mcp_project worker`, the Procfile's worker).")
    try:
        problem = readonly_role_problem()
    except DatabaseError:
        problem = None
    if problem:
        found.append(problem)
    return found


def _index_with_warnings(index):
    def view(request, extra_context=None):
        for warning in admin_warnings():
            messages.warning(request, warning)
        return index(request, extra_context)
    return view


admin.site.index = _index_with_warnings(admin.site.index)
admin.site.site_header = "MCP tool server"
admin.site.site_title = "MCP tool server"
admin.site.index_title = "Tools, tokens and the audit trail"
throttle_admin_login(admin.site)
