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
