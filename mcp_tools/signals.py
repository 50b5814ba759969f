"""Cache invalidation only: any change to a tool, token, token grant or MCP endpoint bumps the lookup caches;
any saved or deleted MCP session drops its cached copy (mcp_tools/services/mcp_sessions.py).

No business logic here. ``QuerySet.update()`` sends no signal: code that uses it bumps itself
(see mcp_tools/services/lookup_cache.py).
"""
from django.core.signals import request_finished, request_started
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .models import ApiToken, McpEndpoint, McpSession, Tool
from .services.lookup_cache import TOKENS, TOOLS, generations_request_scope, lookup_cache_bump
from .services.mcp_sessions import session_cache_invalidate


@receiver(post_save, sender=Tool, dispatch_uid="mcp_lookup_cache_tool_saved")
@receiver(post_delete, sender=Tool, dispatch_uid="mcp_lookup_cache_tool_deleted")
@receiver(post_save, sender=McpEndpoint, dispatch_uid="mcp_lookup_cache_endpoint_saved")
@receiver(post_delete, sender=McpEndpoint, dispatch_uid="mcp_lookup_cache_endpoint_deleted")
@receiver(m2m_changed, sender=McpEndpoint.tools.through, dispatch_uid="mcp_lookup_cache_endpoint_tools")
def _tools_changed(**kwargs):
    # A deleted tool also drops its grant rows without a signal: tokens are invalidated too.
    lookup_cache_bump(TOOLS, TOKENS)


@receiver(post_save, sender=ApiToken, dispatch_uid="mcp_lookup_cache_token_saved")
@receiver(post_delete, sender=ApiToken, dispatch_uid="mcp_lookup_cache_token_deleted")
@receiver(m2m_changed, sender=ApiToken.allowed_tools.through, dispatch_uid="mcp_lookup_cache_token_tools")
def _tokens_changed(**kwargs):
    lookup_cache_bump(TOKENS)


@receiver(post_save, sender=McpSession, dispatch_uid="mcp_session_cache_saved")
@receiver(post_delete, sender=McpSession, dispatch_uid="mcp_session_cache_deleted")
def _session_changed(instance, **kwargs):
    # E.g. an admin deleting a session to end it, or session_prune: no process may keep serving it.
    session_cache_invalidate(session_id=instance.pk)


@receiver(request_started, dispatch_uid="mcp_lookup_generations_request_started")
def _request_started(**kwargs):
    generations_request_scope(True)


@receiver(request_finished, dispatch_uid="mcp_lookup_generations_request_finished")
def _request_finished(**kwargs):
    generations_request_scope(False)
