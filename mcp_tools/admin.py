import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from . import connections_admin  # noqa: F401  (registers the Connections page)
from .admin_login import throttle_admin_login
from .audit_export import AuditCsvExportMixin
from .dashboard.selectors import usage_stats
from .forms import ApiTokenAdminForm, McpEndpointAdminForm, ToolAdminForm, ToolTryForm
from .kinds.base import get_kind
from .models import ApiToken, AuditEvent, McpEndpoint, McpSession, Prompt, Resource, Tool, ToolRevision, ToolTask
from .services.secret_config import config_masked
from .services.tasks import tasks_cancel_by_admin
from .services.tokens import token_assign_secret, token_revoke
from .services.tool_trial import tool_try
from .services.tools import revision_diff, tool_save, tools_set_enabled
from .transports.authentication import client_ip


class ToolRevisionInline(admin.TabularInline):
    model = ToolRevision
    extra = 0
    can_delete = False
    fields = ("version", "changed_by", "created_at", "kind", "name", "what_changed")
    readonly_fields = fields
    show_change_link = False
    verbose_name_plural = "Revisions (every change to the definition, newest first)"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Changes")
    def what_changed(self, revision):
        url = reverse("admin:mcp_tools_tool_revision_diff", args=[revision.tool_id, revision.version])
        if revision.version == 1:
            return format_html('<a href="{}">Created</a>', url)
        fields = ", ".join(change["field"] for change in revision_diff(revision=revision)) or "nothing"
        return format_html('<a href="{}">Diff: {}</a>', url, fields)


def _derives_schemas(tool) -> bool:
    kind = get_kind(tool.kind)
    return kind is not None and kind.derives_schemas


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolAdminForm
    # Few columns, so the list fits a 1280 px window beside the filters.
    list_display = ("name", "title", "kind", "enabled", "version", "updated_at")
    list_editable = ("enabled",)
    list_filter = ("enabled", "kind", "execution")
    search_fields = ("name", "title", "description")
    readonly_fields = ("version", "created_at", "updated_at")
    actions = ("enable_tools", "disable_tools")
    inlines = (ToolRevisionInline,)
    fieldsets = (
        (None, {"fields": ("name", "title", "description", "enabled")}),
        ("What it runs", {"fields": ("kind", "config", "execution", "timeout_s"),
                          "description": "Choose the kind first; its settings form follows the choice."}),
        ("Arguments and result", {"fields": ("input_schema", "output_schema", "annotations")}),
        ("Governance", {"fields": ("rate_limit", "requires_confirmation", "sensitive_fields")}),
        ("History", {"fields": ("version", "created_at", "updated_at")}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None or not _derives_schemas(obj):
            return self.fieldsets
        # Generated from the config (model query): shown, not edited, so they cannot drift from it.
        return tuple(
            (title, {"fields": ("generated_input_schema", "generated_output_schema", "annotations")})
            if title == "Arguments and result" else (title, options) for title, options in self.fieldsets)

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

    def get_urls(self):
        extra = [path("<int:tool_id>/revisions/<int:version>/diff/", self.admin_site.admin_view(self.revision_diff_view),
                      name="mcp_tools_tool_revision_diff"),
                 path("<int:tool_id>/try/", self.admin_site.admin_view(self.try_view), name="mcp_tools_tool_try")]
        return extra + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            extra_context["usage"] = usage_stats(now=timezone.now(), tool_id=int(object_id))
            tool = Tool.objects.filter(pk=object_id).only("name").first()
            if tool is not None:
                extra_context["audit_url"] = (reverse("admin:mcp_tools_auditevent_changelist")
                                              + "?" + urlencode({"tool_name": tool.name}))
        return super().change_view(request, object_id, form_url, extra_context)

    def try_view(self, request, tool_id):
        """Run the tool with arguments from a form built from its input schema, as this admin, fully audited."""
        tool = get_object_or_404(Tool, pk=tool_id)
        if not self.has_change_permission(request, tool):
            raise PermissionDenied
        trial = None
        form = ToolTryForm(request.POST or None, tool=tool)
        if request.method == "POST" and form.is_valid():
            trial = tool_try(tool=tool, arguments=form.cleaned_data["arguments"], user=request.user,
                             client_ip=client_ip(request), confirmed=bool(form.cleaned_data.get("confirm")))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": tool,
                   "title": f"Try {tool.name}", "form": form, "media": self.media + form.media, "trial": trial,
                   "audit_url": reverse("admin:mcp_tools_auditevent_changelist") + "?" + urlencode(
                       {"tool_name": tool.name})}
        if trial is not None:
            context["call_result_json"] = json.dumps(trial.call_result, ensure_ascii=False, indent=2, default=str)
            structured = trial.call_result.get("structuredContent")
            context["structured_json"] = None if structured is None else json.dumps(
                structured, ensure_ascii=False, indent=2, default=str)
            if trial.audit_event is not None:
                context["audit_arguments_json"] = json.dumps(trial.audit_event.arguments, ensure_ascii=False,
                                                             indent=2, default=str)
        return TemplateResponse(request, "admin/mcp_tools/tool/try.html", context)

    def revision_diff_view(self, request, tool_id, version):
        """One revision against the one before it, field by field (secret values are never stored)."""
        tool = get_object_or_404(Tool, pk=tool_id)
        if not self.has_view_or_change_permission(request, tool):
            raise PermissionDenied
        revision = get_object_or_404(ToolRevision, tool=tool, version=version)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": tool,
                   "title": f"{tool.name}: changes in version {version}", "revision": revision,
                   "changes": revision_diff(revision=revision),
                   "revisions": tool.revisions.select_related("changed_by").order_by("-version")[:50]}
        return TemplateResponse(request, "admin/mcp_tools/tool/revision_diff.html", context)

    @admin.action(description="Enable selected tools", permissions=["change"])
    def enable_tools(self, request, queryset):
        count = tools_set_enabled(queryset=queryset, enabled=True, changed_by=request.user)
        self.message_user(request, f"Enabled {count} tool(s).", messages.SUCCESS)

    @admin.action(description="Disable selected tools", permissions=["change"])
    def disable_tools(self, request, queryset):
        count = tools_set_enabled(queryset=queryset, enabled=False, changed_by=request.user)
        self.message_user(request, f"Disabled {count} tool(s).", messages.SUCCESS)


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        now = timezone.now()
        not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        if self.value() == "active":
            return queryset.filter(not_expired, revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


def token_status(token) -> str:
    """active, expired or revoked (revoked wins over expired)."""
    if token.is_revoked:
        return "revoked"
    return "expired" if token.is_expired() else "active"


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenAdminForm
    list_display = ("name", "status", "prefix", "owner", "all_tools", "expires_at", "last_used_at")
    list_filter = (TokenStatusFilter, "all_tools")
    search_fields = ("name", "prefix", "owner__username")
    filter_horizontal = ("allowed_tools",)
    readonly_fields = ("prefix", "revoked_at", "last_used_at", "created_at")
    actions = ("revoke_tokens",)

    @admin.display(description="Status")
    def status(self, token):
        value = token_status(token)
        return format_html('<span class="mcp-status mcp-status-{}">{}</span>', value, value)

    def has_change_permission(self, request, obj=None):
        # A revoked token is history: its page is read-only (Django then shows the view-only form).
        if obj is not None and obj.is_revoked:
            return False
        return super().has_change_permission(request, obj)

    def revoke_view(self, request, token_id):
        """Confirm (GET) and revoke (POST) one token."""
        token = get_object_or_404(ApiToken, pk=token_id)
        if not super().has_change_permission(request, token):
            raise PermissionDenied
        change_url = reverse("admin:mcp_tools_apitoken_change", args=[token.pk])
        if request.method == "POST":
            if not token.is_revoked:
                token_revoke(token=token)
                self.log_change(request, token, "Revoked")
                self.message_user(request, f"Token {token} revoked: it no longer authenticates.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": token,
                   "title": f"Revoke token {token}?", "change_url": change_url}
        return TemplateResponse(request, "admin/mcp_tools/apitoken/revoke_confirm.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        token = ApiToken.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if token is not None:
            extra_context.update(
                usage=usage_stats(now=timezone.now(), token_id=token.pk), token_status=token_status(token),
                audit_url=reverse("admin:mcp_tools_auditevent_changelist") + "?" + urlencode(
                    {"token__id__exact": token.pk}),
                can_revoke=not token.is_revoked and super().has_change_permission(request, token))
        return super().change_view(request, object_id, form_url, extra_context)

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
        revoke = path("<int:token_id>/revoke/", self.admin_site.admin_view(self.revoke_view),
                      name="mcp_tools_apitoken_revoke")
        return [created, revoke, *super().get_urls()]

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


class TimeRangeFilter(admin.ListFilter):
    """From / until, to the second (the admin's date filters stop at whole days). Times in the server's zone."""

    title = "time range"
    template = "admin/mcp_tools/time_range_filter.html"
    parameters = ("created_from", "created_until")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.raw = {}
        self.bounds = {}
        self.problems = []
        for name in self.parameters:
            if name in params:
                value = params.pop(name)
                value = value[-1] if isinstance(value, list) else value
                self.raw[name] = value
                parsed = parse_datetime(value.strip().replace(" ", "T")) if value.strip() else None
                if value.strip() and parsed is None:
                    self.problems.append(f"'{value}' is not a time like 2026-11-30T14:05:09.")
                elif parsed is not None:
                    self.bounds[name] = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)

    def has_output(self):
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        if "created_from" in self.bounds:
            queryset = queryset.filter(created_at__gte=self.bounds["created_from"])
        if "created_until" in self.bounds:
            queryset = queryset.filter(created_at__lte=self.bounds["created_until"])
        return queryset

    def choices(self, changelist):
        keep = [(key, value) for key, values in changelist.get_filters_params().items()
                for value in (values if isinstance(values, list) else [values]) if key not in self.parameters]
        if changelist.query:
            keep.append(("q", changelist.query))
        yield {"selected": bool(self.bounds), "raw": self.raw, "problems": self.problems, "keep": keep,
               "tz": timezone.get_current_timezone_name(),
               "clear_url": changelist.get_query_string(remove=list(self.parameters))}


def _link_if_allowed(request, field: str, label: str):
    """A read-only FK shown as a link only when this user may open the target; plain text otherwise."""
    def display(event):
        target = getattr(event, field)
        if target is None:
            return "–"
        opts = target._meta
        if request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or \
                request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[target.pk])
            return format_html('<a href="{}">{}</a>', url, target)
        return str(target)
    display.short_description = label
    return display


@admin.register(AuditEvent)
class AuditEventAdmin(AuditCsvExportMixin, admin.ModelAdmin):
    list_display = ("created_at", "tool_name", "outcome_and_code", "token_prefix", "transport", "duration_ms",
                    "arguments_preview")
    list_filter = (TimeRangeFilter, "outcome", "tool_name", "transport", "token", "created_at")
    date_hierarchy = "created_at"
    # arguments_text: the stored (already redacted) arguments as text, so a customer's e-mail is found.
    search_fields = ("tool_name", "request_id", "token_prefix", "error_message", "arguments_text")
    search_help_text = "Searches tool name, request id, token prefix, error message and the call's arguments."
    list_select_related = ("token",)
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(arguments_text=Cast("arguments", TextField()))

    @admin.display(description="outcome", ordering="outcome")
    def outcome_and_code(self, event):
        label = event.get_outcome_display()
        return f"{label} ({event.error_code})" if event.error_code and event.error_code != event.outcome else label

    @admin.display(description="arguments (redacted)")
    def arguments_preview(self, event):
        text = json.dumps(event.arguments, ensure_ascii=False, sort_keys=True)
        return text if len(text) <= 80 else text[:79] + "…"

    def get_readonly_fields(self, request, obj=None):
        links = {"token": _link_if_allowed(request, "token", "token"), "tool": _link_if_allowed(request, "tool", "tool"),
                 "user": _link_if_allowed(request, "user", "user")}
        return [links.get(f.name, f.name) for f in self.model._meta.fields]

    def get_fields(self, request, obj=None):
        # Only the read-only list: the foreign keys are shown by the permission-aware callables above.
        return self.get_readonly_fields(request, obj)

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

    form = McpEndpointAdminForm
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


throttle_admin_login(admin.site)
