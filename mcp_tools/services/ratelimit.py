"""Rate limits for tool calls (django-ratelimit on the shared cache, Redis in production).

Two buckets per call, both counted per caller (API token, admin user, else client IP):

- the caller's own limit: ``ApiToken.rate_limit``, else ``MCP_DEFAULT_RATE_LIMIT`` (100/m);
- the tool's limit, if it has one: ``Tool.rate_limit`` (e.g. database_query 10/m).

Counters live in the cache shared by every server process, so limits hold across
workers and machines. Windows are fixed (django-ratelimit's), and a call counts
whether or not it is then refused.

When the cache cannot be reached, calls run unthrottled (fail open) unless the tool
is destructive in MCP's terms: not ``readOnlyHint: true`` and not explicitly
``destructiveHint: false`` (MCP's default for a writing tool is destructive). Those
are refused with ServiceUnavailable (fail closed: an unthrottled agent must not be
able to delete or overwrite without limit). So reads and additive writes such as
``create_ticket`` keep working on Postgres alone while Redis is down.
"""
import logging

from django.conf import settings
from django_ratelimit.core import get_usage

from ..exceptions import RateLimited, ServiceUnavailable

logger = logging.getLogger("mcp_tools.ratelimit")


def caller_key(caller) -> str:
    # The token's random prefix, not its pk: pks are reused after a database reset, counters are not.
    if caller.api_token is not None:
        return f"token:{caller.api_token.prefix}"
    if caller.oauth_token is not None:
        return f"oauth:{caller.label}:{getattr(caller.acting_user, 'pk', '')}"
    if caller.user is not None:
        return f"user:{caller.user.pk}"
    return f"ip:{caller.client_ip or 'unknown'}"


def _limits(tool, caller) -> list[tuple[str, str, str]]:
    """(group, rate, who) for each bucket this call counts against."""
    limits = []
    token = caller.api_token
    caller_rate = (token.rate_limit if token is not None else "") or settings.MCP_DEFAULT_RATE_LIMIT
    if caller_rate:
        limits.append(("mcp:caller", caller_rate, "this API token" if token is not None else "this caller"))
    if tool.rate_limit:
        limits.append((f"mcp:tool:{tool.name}", tool.rate_limit, f"tool '{tool.name}'"))
    return limits


def rate_limit_check(*, tool, caller) -> None:
    """Count this call; raise RateLimited when a limit is exceeded, ServiceUnavailable per the policy above."""
    key = caller_key(caller)
    exceeded = []
    for group, rate, who in _limits(tool, caller):
        try:
            usage = get_usage(None, group=group, key=lambda _group, _request: key, rate=rate, increment=True)
        except Exception as exc:  # the cache backend's own errors (redis.ConnectionError, OSError, ...)
            usage = {"time_left": -1, "limit": 0, "error": type(exc).__name__}
        if usage is None:
            continue
        if usage["time_left"] == -1 and usage["limit"] == 0:
            _cache_unavailable(tool, usage.get("error", "no answer"))
            return
        if usage["should_limit"]:
            exceeded.append((max(1, usage["time_left"]), rate, who))
    if exceeded:
        retry_after, rate, who = max(exceeded)
        raise RateLimited(f"Rate limit exceeded for {who} ({rate}). Retry after {retry_after} seconds.",
                          retry_after_s=retry_after)


def tool_is_destructive(tool) -> bool:
    """MCP semantics: a tool that is not read-only is destructive unless it says otherwise."""
    annotations = tool.annotations or {}
    return annotations.get("readOnlyHint") is not True and annotations.get("destructiveHint") is not False


def _cache_unavailable(tool, error: str) -> None:
    if not tool_is_destructive(tool):
        logger.warning("Rate limiting unavailable (%s); running non-destructive tool %s without a limit",
                       error, tool.name)
        return
    logger.error("Rate limiting unavailable (%s); refusing destructive tool %s", error, tool.name)
    raise ServiceUnavailable(f"Rate limiting is temporarily unavailable, so tool '{tool.name}' (which may delete "
                             "or overwrite data) cannot run right now. Try again in a minute.")
