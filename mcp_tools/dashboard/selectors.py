"""Aggregates over AuditEvent for the dashboard.

Every query filters on a created_at range first, so Postgres uses the created_at
index (or (tool_name, created_at) / (outcome, created_at)) and never scans the
whole, ever-growing table.
"""
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Max

from ..models import AuditEvent

OUTCOMES = [choice for choice, _ in AuditEvent.Outcome.choices]


class _Percentile95(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass
class ToolCalls:
    tool_name: str
    total: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


@dataclass
class ToolSpeed:
    tool_name: str
    calls: int
    avg_ms: float
    p95_ms: float | None
    max_ms: float


def calls_per_tool(*, since: datetime, limit: int = 15) -> tuple[list[ToolCalls], dict[str, int]]:
    """The busiest tools since ``since`` with their calls split by outcome, and the outcome totals."""
    rows = (AuditEvent.objects.filter(created_at__gte=since).values("tool_name", "outcome")
            .annotate(n=Count("id")).order_by())
    tools: dict[str, ToolCalls] = {}
    totals: dict[str, int] = {}
    for row in rows:
        entry = tools.setdefault(row["tool_name"], ToolCalls(row["tool_name"]))
        entry.by_outcome[row["outcome"]] = row["n"]
        entry.total += row["n"]
        totals[row["outcome"]] = totals.get(row["outcome"], 0) + row["n"]
    ranked = sorted(tools.values(), key=lambda t: (-t.total, t.tool_name))
    return ranked[:limit], totals


def slowest_tools(*, since: datetime, limit: int = 10) -> list[ToolSpeed]:
    """Tools by mean duration of their calls since ``since`` (p95 on Postgres)."""
    aggregates = {"calls": Count("id"), "avg_ms": Avg("duration_ms"), "max_ms": Max("duration_ms")}
    if connection.vendor == "postgresql":
        aggregates["p95_ms"] = _Percentile95("duration_ms")
    rows = (AuditEvent.objects.filter(created_at__gte=since).values("tool_name").annotate(**aggregates)
            .order_by("-avg_ms", "tool_name")[:limit])
    return [ToolSpeed(tool_name=r["tool_name"], calls=r["calls"], avg_ms=r["avg_ms"] or 0.0,
                      p95_ms=r.get("p95_ms"), max_ms=r["max_ms"] or 0.0) for r in rows]


class _Percentile(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


@dataclass
class UsageWindow:
    label: str
    calls: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass
class Usage:
    last_called: datetime | None
    windows: list[UsageWindow]


def usage_stats(*, now: datetime, tool_id: int | None = None, token_id: int | None = None) -> Usage:
    """Calls, errors (any outcome but ok and queued) and p50/p99 duration over the last day and week.

    For one tool or one token (by id); percentiles need Postgres (None elsewhere).
    """
    from datetime import timedelta

    from django.db.models import Q

    events = AuditEvent.objects.all()
    if tool_id is not None:
        events = events.filter(tool_id=tool_id)
    if token_id is not None:
        events = events.filter(token_id=token_id)
    last = events.order_by("-created_at").values_list("created_at", flat=True).first()
    windows = []
    for label, days in (("Last 24 hours", 1), ("Last 7 days", 7)):
        aggregates = {"calls": Count("id"), "errors": Count("id", filter=~Q(outcome__in=["ok", "queued"]))}
        if connection.vendor == "postgresql":
            aggregates["p50"] = _Percentile("duration_ms", fraction=0.5)
            aggregates["p99"] = _Percentile("duration_ms", fraction=0.99)
        row = events.filter(created_at__gte=now - timedelta(days=days)).aggregate(**aggregates)
        windows.append(UsageWindow(label=label, calls=row["calls"], errors=row["errors"], p50_ms=row.get("p50"),
                                   p99_ms=row.get("p99")))
    return Usage(last_called=last, windows=windows)
