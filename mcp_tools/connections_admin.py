"""The admin's Connections page: refused requests with their reason and fix, and the clients that connected."""
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Exists, Max, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import AuditEvent, ClientConnection, ConnectionRefusal
from .services.connections import REASONS, connection_log_flush, reason_fix, reason_words


def _audit_link(token_prefix: str):
    if not token_prefix:
        return "—"
    url = reverse("admin:mcp_tools_auditevent_changelist") + "?" + urlencode({"token_prefix": token_prefix})
    return format_html('<a href="{}">audit events</a>', url)


def refusal_groups(*, by: tuple[str, ...], now=None) -> list[dict]:
    """Refusals of the last day grouped by ``by`` fields: counts over the last hour and day, newest first."""
    now = now or timezone.now()
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    rows = (ConnectionRefusal.objects.filter(last_at__gte=day_ago).values(*by)
            .annotate(last_hour=Sum("count", filter=Q(last_at__gte=hour_ago), default=0),
                      last_day=Sum("count"), last_at=Max("last_at"))
            .order_by("-last_at")[:100])
    rows = list(rows)
    audited = _audited_prefixes({row.get("token_prefix") for row in rows} - {None, ""})
    for row in rows:
        reason = row.get("reason")
        if reason is not None:
            row["words"], row["fix"] = reason_words(reason), reason_fix(reason)
        if "token_prefix" in row:
            row["audit_link"] = _audit_link(row["token_prefix"]) if row["token_prefix"] in audited else "—"
    return rows


def _audited_prefixes(prefixes: set[str]) -> set[str]:
    """Which of these credentials have audit events (so a link to them shows something)."""
    if not prefixes:
        return set()
    return set(AuditEvent.objects.filter(token_prefix__in=prefixes).values_list("token_prefix", flat=True)
               .distinct())


@admin.register(ConnectionRefusal)
class ConnectionRefusalAdmin(admin.ModelAdmin):
    """Read-only. Rows are written by services.connections, never through the admin."""

    list_display = ("last_at", "reason_words", "client_fix", "count", "transport", "method", "path", "client_ip",
                    "token_prefix", "client", "http_status", "audit")
    list_filter = ("reason", "transport", "last_at")
    search_fields = ("token_prefix", "client_name", "client_ip", "path")
    show_full_result_count = False

    @admin.display(description="reason")
    def reason_words(self, obj):
        return reason_words(obj.reason)

    @admin.display(description="fix on the client side")
    def client_fix(self, obj):
        return reason_fix(obj.reason)

    @admin.display(description="client")
    def client(self, obj):
        return " ".join(filter(None, (obj.client_name, obj.client_version))) or "—"

    @admin.display(description="audit")
    def audit(self, obj):
        return _audit_link(obj.token_prefix) if getattr(obj, "has_audit", False) else "—"

    def get_queryset(self, request):
        audited = AuditEvent.objects.filter(token_prefix=OuterRef("token_prefix")).exclude(token_prefix="")
        return super().get_queryset(request).annotate(has_audit=Exists(audited))

    def changelist_view(self, request, extra_context=None):
        connection_log_flush()  # this process's pending rows, so a refusal just made here shows at once
        context = {
            "by_reason": refusal_groups(by=("reason",)),
            "by_client": refusal_groups(by=("token_prefix", "client_name", "client_version", "client_ip",
                                            "reason")),
            "connected": ClientConnection.objects.all()[:50],
            "reason_count": len(REASONS),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ClientConnection)
class ClientConnectionAdmin(admin.ModelAdmin):
    list_display = ("last_seen", "client_name", "client_version", "protocol_version", "transport", "credential",
                    "client_ip", "first_seen")
    list_filter = ("transport", "protocol_version")
    search_fields = ("client_name", "credential")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
