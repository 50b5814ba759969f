"""Saving tools, keeping a revision of every change to a tool's definition."""
import difflib
import json

from django.db import transaction

from ..kinds.base import get_kind
from ..models import Tool, ToolRevision
from .secret_config import config_masked

# Everything that decides what a tool is and does; a change to any of them is a new version.
REVISED_FIELDS = ("name", "title", "description", "input_schema", "output_schema", "annotations", "kind",
                  "config", "enabled", "execution", "timeout_s", "rate_limit", "requires_confirmation",
                  "sensitive_fields")


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


def _secrets_changed(tool: Tool, previous: Tool | None) -> list[str]:
    """Names of secret config entries (e.g. secret_headers) set, changed or removed by this save."""
    kind = get_kind(tool.kind)
    changed = []
    for field in getattr(kind, "secret_config_fields", ()) or ():
        now = (tool.config or {}).get(field) or {}
        before = ((previous.config or {}).get(field) or {}) if previous is not None else {}
        if isinstance(now, dict) and isinstance(before, dict):
            changed += [f"{field}.{name}" for name in sorted(set(now) | set(before)) if now.get(name) != before.get(name)]
    return changed


def _revision_record(tool: Tool, previous: Tool | None, changed_by) -> ToolRevision:
    snapshot = _snapshot(tool)
    # Secret values never reach the history: only that they changed.
    snapshot["config"] = config_masked(get_kind(tool.kind), tool.config or {})
    return ToolRevision.objects.create(tool=tool, version=tool.version, changed_by=changed_by,
                                       secrets_changed=_secrets_changed(tool, previous), **snapshot)


def tool_save(*, tool: Tool, changed_by=None) -> Tool:
    """Save ``tool``; if its definition changed, bump its version and keep a revision (who, when, what).

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
            _revision_record(tool, previous, changed_by)
    return tool


def tools_set_enabled(*, queryset, enabled: bool, changed_by=None) -> int:
    """Enable or disable the tools in ``queryset``; each one that changes gets a revision. Returns how many."""
    changed = 0
    with transaction.atomic():
        for tool in queryset.exclude(enabled=enabled).select_for_update():
            tool.enabled = enabled
            tool_save(tool=tool, changed_by=changed_by)
            changed += 1
    # Each save above already bumps the lookup caches and announces the change (signals, after commit).
    return changed


def _field_lines(value) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).splitlines()


def revision_diff(*, revision: ToolRevision) -> list[dict]:
    """What changed from the revision before ``revision``: one entry per changed field.

    Each entry is ``{"field", "lines": [(tag, text)]}`` with tag "+", "-" or " " (unified diff,
    whole field as context). The first revision is diffed against nothing.
    """
    before = (ToolRevision.objects.filter(tool_id=revision.tool_id, version__lt=revision.version)
              .order_by("-version").first())
    # Revisions from before the whole definition was kept have no execution: only the first six fields count.
    legacy = before is not None and not before.execution
    changes = []
    for field in REVISED_FIELDS:
        recorded = before is not None and not (legacy and field not in REVISED_FIELDS[:6])
        old = getattr(before, field) if recorded else None
        new = getattr(revision, field)
        if recorded and old == new and not (field == "config" and revision.secrets_changed):
            continue
        if not recorded and new in (None, "", [], {}):
            continue
        old_lines = _field_lines(old) if recorded else []
        lines = [(line[0], line[1:]) for line in difflib.unified_diff(
            old_lines, _field_lines(new), lineterm="", n=10_000)][2:]
        lines = [(tag, text) for tag, text in lines if tag in "+- "]
        if field == "config":
            lines += [("+", f"(secret {name} changed; its value is never shown)") for name in revision.secrets_changed]
        changes.append({"field": field, "lines": lines})
    return changes
