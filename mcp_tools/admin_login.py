"""Throttle admin login attempts (django-ratelimit, on the shared cache).

Every POST to the login page counts against two buckets: the client IP and the
username tried, each ``MCP_ADMIN_LOGIN_RATE_LIMIT`` (default 5/m). Beyond either,
the form is not processed: 429 with Retry-After, so guessing a password from one
address, or one account's password from many, is slow. If the cache is down the
login form still works (an outage must not lock administrators out) and an error
is logged.
"""
import functools
import logging

from django.conf import settings
from django.http import HttpResponse
from django.utils.html import escape
from django_ratelimit.core import get_usage

logger = logging.getLogger("mcp_tools.admin_login")


def _usage(request, group: str, value: str):
    return get_usage(request, group=group, key=lambda _group, _request: value,
                     rate=settings.MCP_ADMIN_LOGIN_RATE_LIMIT, method="POST", increment=True)


def login_throttled(request) -> int | None:
    """Seconds to wait if this login attempt is over the limit, else None."""
    if not settings.MCP_ADMIN_LOGIN_RATE_LIMIT:
        return None
    username = str(request.POST.get("username", ""))[:150].strip().lower()
    waits = []
    try:
        for group, value in (("admin-login:ip", request.META.get("REMOTE_ADDR") or "unknown"),
                             ("admin-login:user", username)):
            usage = _usage(request, group, value)
            if usage and usage["should_limit"]:
                waits.append(max(1, usage["time_left"]))
    except Exception as exc:  # the cache backend's own errors
        logger.error("Admin login throttling unavailable (%s); allowing the attempt", type(exc).__name__)
        return None
    return max(waits) if waits else None


def throttle_admin_login(site) -> None:
    """Wrap ``site.login`` (an AdminSite) with the throttle."""
    original = site.login

    @functools.wraps(original)
    def login(request, extra_context=None):
        if request.method == "POST":
            wait = login_throttled(request)
            if wait is not None:
                response = HttpResponse(
                    f"<!doctype html><title>Too many login attempts</title><h1>Too many login attempts</h1>"
                    f"<p>Try again in {escape(wait)} seconds.</p>", status=429)
                response["Retry-After"] = str(wait)
                return response
        return original(request, extra_context)

    site.login = login
