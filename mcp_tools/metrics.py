"""The product's own Prometheus metrics, beside django-prometheus' HTTP ones.

Names follow the seed: ``mcp_tool_invocations_total{tool_name,status}`` and
``mcp_tool_duration_seconds{tool_name}``. With PROMETHEUS_MULTIPROC_DIR set
(gunicorn with several workers, Celery prefork workers) prometheus_client writes
the values to files in that directory and /metrics adds up every process.
"""
from prometheus_client import Counter, Histogram

TOOL_INVOCATIONS = Counter(
    "mcp_tool_invocations", "Tool invocations by tool and outcome (ok, tool_error, denied, ...).",
    ["tool_name", "status"],
)
TOOL_DURATION = Histogram(
    "mcp_tool_duration_seconds", "Time spent in the invocation pipeline per tool.", ["tool_name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
AUTH_FAILURES = Counter(
    "mcp_auth_failures", "Requests refused because their credential was missing, malformed, unknown, "
    "revoked or expired (HTTP 401).", ["endpoint"],
)
RATE_LIMITED = Counter("mcp_rate_limited_calls", "Tool calls refused by a rate limit.", ["tool_name"])
TASK_OUTCOMES = Counter(
    "mcp_task_outcomes", "Celery task outcomes (success, failure, retry, rejected, revoked).", ["task_name", "outcome"],
)

# Label values come from callers (a tool name an agent typed): keep them short so a
# flood of made-up names cannot make a label value huge.
_MAX_LABEL = 128


def metrics_record_invocation(*, tool_name: str, outcome: str, duration_ms: float) -> None:
    name = (tool_name or "-")[:_MAX_LABEL]
    TOOL_INVOCATIONS.labels(tool_name=name, status=outcome).inc()
    TOOL_DURATION.labels(tool_name=name).observe(max(duration_ms, 0.0) / 1000)
    if outcome == "rate_limited":
        RATE_LIMITED.labels(tool_name=name).inc()


def metrics_record_auth_failure(*, endpoint: str) -> None:
    AUTH_FAILURES.labels(endpoint=endpoint[:_MAX_LABEL]).inc()


def metrics_record_task_outcome(*, task_name: str, outcome: str) -> None:
    TASK_OUTCOMES.labels(task_name=(task_name or "-")[:_MAX_LABEL], outcome=outcome).inc()
