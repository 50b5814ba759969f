"""Saving tools, keeping a revision of every change to what agents are shown."""
from django.db import transaction

from ..kinds.base import get_kind
from ..models import Tool, ToolRevision
from .live_events import TOOLS_CHANGED, change_announce
from .lookup_cache import TOOLS, lookup_cache_bump

REVISED_FIELDS = ("name", "title", "description", "input_schema", "output_schema", "annotations")


def _snapshot(tool: Tool) -> dict:
    return {field: getattr(tool, field) for field in REVISED_FIELDS}


def tool_derive(*, tool: Tool) -> Tool:
    """Fill in what ``tool``'s kind generates from its config (schemas, fixed annotations).

    The admin form refuses an unusable config; if one is saved another way (or a setting changed under it),
    the stored schemas stay and calls fail as misconfigured, rather than this save failing.
    """
    kind = get_kind(tool.kind)
    if kind is None:
        return tool
    try:
        derived = kind.derived_schemas(tool.config or {})
    except ValueError:
        derived = None
    if derived is not None:
        tool.input_schema, tool.output_schema = derived
    if kind.fixed_annotations:
        tool.annotations = {**(tool.annotations or {}), **kind.fixed_annotations}
    return tool


def tool_save(*, tool: Tool, changed_by=None) -> Tool:
    """Save ``tool``; if what agents see changed, bump its version and keep a revision.

    Kinds that generate their schemas from the config get them regenerated here, so they follow the config.
    """
    tool_derive(tool=tool)
    with transaction.atomic():
        previous = Tool.objects.select_for_update().filter(pk=tool.pk).first() if tool.pk else None
        changed = previous is None or _snapshot(previous) != _snapshot(tool)
        if previous is not None and changed:
            tool.version = previous.version + 1
        tool.save()
        if changed:
            ToolRevision.objects.create(tool=tool, version=tool.version, changed_by=changed_by, **_snapshot(tool))
    return tool


def tools_set_enabled(*, queryset, enabled: bool) -> int:
    changed = queryset.update(enabled=enabled)
    lookup_cache_bump(TOOLS)  # QuerySet.update() sends no signal: invalidate and announce here
    if changed:
        change_announce(method=TOOLS_CHANGED)
    return changed
