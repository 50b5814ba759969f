from django.contrib import admin, messages
from django.template.response import TemplateResponse

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

    def save_model(self, request, obj, form, change):
        if not change:
            # The secret lives only in this request; response_add shows it once.
            request._issued_secret = token_assign_secret(token=obj)
        obj.save()

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_issued_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "token": obj, "secret": secret,
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
        ("Tools", {"fields": ("all_tools", "tools", "page_size"),
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


admin.site.site_header = "MCP tool server"
admin.site.site_title = "MCP tool server"
admin.site.index_title = "Tools, tokens and the audit trail"
throttle_admin_login(admin.site)
