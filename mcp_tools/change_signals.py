"""Announce admins' changes to tools, prompts and resources on the change feed (``subscriptions/listen``).

After commit only, so a client that refetches on the notification sees the change. A change
to an endpoint's tool, prompt or resource set changes those lists too. ``QuerySet.update()``
sends no signal; the admin and the services save rows one by one.
"""
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .models import McpEndpoint, Prompt, Resource, Tool
from .services.live_events import (
    PROMPTS_CHANGED,
    RESOURCE_UPDATED,
    RESOURCES_CHANGED,
    TOOLS_CHANGED,
    change_announce,
)


@receiver(post_save, sender=Tool, dispatch_uid="mcp_changes_tool_saved")
@receiver(post_delete, sender=Tool, dispatch_uid="mcp_changes_tool_deleted")
@receiver(m2m_changed, sender=McpEndpoint.tools.through, dispatch_uid="mcp_changes_endpoint_tools")
def _tools_changed(**kwargs):
    change_announce(method=TOOLS_CHANGED)


@receiver(post_save, sender=Prompt, dispatch_uid="mcp_changes_prompt_saved")
@receiver(post_delete, sender=Prompt, dispatch_uid="mcp_changes_prompt_deleted")
@receiver(m2m_changed, sender=McpEndpoint.prompts.through, dispatch_uid="mcp_changes_endpoint_prompts")
def _prompts_changed(**kwargs):
    change_announce(method=PROMPTS_CHANGED)


@receiver(post_save, sender=Resource, dispatch_uid="mcp_changes_resource_saved")
@receiver(post_delete, sender=Resource, dispatch_uid="mcp_changes_resource_deleted")
def _resource_changed(instance, **kwargs):
    change_announce(method=RESOURCE_UPDATED, params={"uri": instance.uri})
    if kwargs.get("created", True):  # added or deleted: the list changed too (an edit changes only the resource)
        change_announce(method=RESOURCES_CHANGED)


@receiver(m2m_changed, sender=McpEndpoint.resources.through, dispatch_uid="mcp_changes_endpoint_resources")
def _endpoint_resources_changed(**kwargs):
    change_announce(method=RESOURCES_CHANGED)


@receiver(post_save, sender=McpEndpoint, dispatch_uid="mcp_changes_endpoint_saved")
@receiver(post_delete, sender=McpEndpoint, dispatch_uid="mcp_changes_endpoint_deleted")
def _endpoint_changed(**kwargs):
    for method in (TOOLS_CHANGED, PROMPTS_CHANGED, RESOURCES_CHANGED):
        change_announce(method=method)
