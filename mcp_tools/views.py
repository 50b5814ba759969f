import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .multiprocess import metrics_registry
from .readiness import advisory_checks, readiness_checks

logger = logging.getLogger("mcp_tools.views")


@require_GET
def health(request):
    """Liveness: the process answers. Dependencies are checked by /health/ready."""
    return JsonResponse({"status": "healthy", "version": settings.VERSION})


@require_GET
def health_ready(request):
    """Readiness: 503 naming the blocking checks that failed; advisory ones (workers, read-only role) as warnings.

    Body: {"status": "ready"|"unavailable", "checks": {name: result}, "failed": [...]?, "warnings": [...]?}.
    """
    checks = readiness_checks()
    failed = [name for name, result in checks.items() if result != "ok"]
    advisories = advisory_checks() if "database" not in failed else {}
    warnings = [name for name, result in advisories.items() if result != "ok"]
    body = {"status": "unavailable" if failed else "ready", "checks": {**checks, **advisories}}
    if failed:
        body["failed"] = failed
    if warnings:
        body["warnings"] = warnings
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics(request):
    """Prometheus exposition, only for allow-listed addresses or the METRICS_TOKEN bearer."""
    if not _metrics_allowed(request):
        return JsonResponse({"detail": "Metrics are only served to allow-listed addresses or with the "
                                       "metrics token (Authorization: Bearer <METRICS_TOKEN>)."}, status=403)
    response = HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
