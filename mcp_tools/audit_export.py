"""CSV export of the audit list as the admin shows it (same filters, search and date drill-down)."""
import csv
import json

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone

EXPORT_FIELDS = ["created_at", "tool_name", "outcome", "error_code", "error_message", "token_prefix", "transport",
                 "method", "duration_ms", "argument_bytes", "client_ip", "protocol_version", "request_id", "task_id",
                 "arguments"]
# Spreadsheet programs run cells starting with these as formulas; such values get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def audit_csv_rows(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in queryset.values_list(*EXPORT_FIELDS).iterator(chunk_size=2000):
        # The arguments column is the stored copy, redacted when the event was written.
        yield writer.writerow([_cell(json.dumps(value, ensure_ascii=False, sort_keys=True)
                                     if name == "arguments" else value) for name, value in zip(EXPORT_FIELDS, row)])


class AuditCsvExportMixin:
    """Adds ``export.csv`` to an AuditEvent admin: the filtered changelist, streamed as CSV."""

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [path("export.csv", self.admin_site.admin_view(self.export_csv_view),
                     name="%s_%s_export" % info)] + super().get_urls()

    def export_csv_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).get_queryset(request).order_by("-created_at", "-pk")
        response = StreamingHttpResponse(audit_csv_rows(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        response["Cache-Control"] = "no-store"
        return response
