from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import mark_safe

from ..models import AuditEvent
from .chart import OUTCOME_COLOURS, duration_bars, stacked_bars
from .selectors import OUTCOMES, calls_per_tool, slowest_tools

PERIODS = (("day", "Last 24 hours", timedelta(days=1)), ("week", "Last 7 days", timedelta(days=7)))


def dashboard(request):
    """Calls per tool and outcome over the last day and week, and the slowest tools (staff with audit access)."""
    if not request.user.has_perm("mcp_tools.view_auditevent"):
        raise PermissionDenied
    now = timezone.now()
    periods = []
    for key, label, span in PERIODS:
        tools, totals = calls_per_tool(since=now - span)
        slow = slowest_tools(since=now - span)
        periods.append({
            "key": key, "label": label, "tools": tools, "slowest": slow,
            "totals": [(o, totals.get(o, 0), OUTCOME_COLOURS[o]) for o in OUTCOMES if totals.get(o)],
            "total": sum(totals.values()),
            # Built from escaped strings only (see chart.py).
            "calls_svg": mark_safe(stacked_bars(title=f"Calls per tool and outcome, {label.lower()}",
                                                rows=tools, outcomes=OUTCOMES)),
            "slow_svg": mark_safe(duration_bars(title=f"Slowest tools, {label.lower()}", rows=slow)),
        })
    context = {**admin.site.each_context(request), "title": "Agent activity", "periods": periods,
               "opts": AuditEvent._meta, "generated_at": now}
    return TemplateResponse(request, "admin/mcp_tools/dashboard.html", context)
