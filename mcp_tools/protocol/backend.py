"""The interface the Django side implements to serve MCP (tools, resources, prompts...).

Handlers return plain dicts shaped like the MCP schema (use ``content.py`` to
build them). Tool *execution* failures are results with ``isError: true``;
raise :class:`ProtocolError` (or the subclasses below) only for protocol
failures: unknown tool, bad arguments, missing resource.
Any handler that may need client input (confirmation, sampling, roots)
returns :class:`~mcp_tools.protocol.context.InputRequired`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from .context import InputRequired, RequestContext
from .jsonrpc import INVALID_PARAMS, ProtocolError

FEATURES = frozenset({"tools", "resources", "resource_subscriptions", "prompts", "completions", "logging"})


class ToolNotFound(ProtocolError):
    def __init__(self, name: str) -> None:
        super().__init__(INVALID_PARAMS, f"Unknown tool: {name}", {"name": name})


class PromptNotFound(ProtocolError):
    def __init__(self, name: str) -> None:
        super().__init__(INVALID_PARAMS, f"Unknown prompt: {name}", {"name": name})


class ResourceNotFound(ProtocolError):
    """The wire code depends on the era (-32002 before 2026-07-28, -32602 after); server.py maps it."""

    def __init__(self, uri: str) -> None:
        super().__init__(INVALID_PARAMS, "Resource not found", {"uri": uri})


class Backend(ABC):
    """Subclass and override what you serve; declare it in ``features``.

    Capabilities advertised to clients follow from ``features`` (only the
    matching methods are registered) and ``list_changed``.
    """

    features: ClassVar[frozenset[str]] = frozenset({"tools"})
    list_changed: ClassVar[frozenset[str]] = frozenset()  # subset of {"tools", "resources", "prompts"}

    # --- tools (required) ---
    @abstractmethod
    def list_tools(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """All tools visible to ``ctx.principal``, in a stable order."""

    @abstractmethod
    def call_tool(self, ctx: RequestContext, name: str, arguments: dict[str, Any]) -> dict[str, Any] | InputRequired:
        """Run a tool; return a CallToolResult dict. Raise ToolNotFound for unknown names."""

    def get_tool(self, ctx: RequestContext, name: str) -> dict[str, Any] | None:
        """The Tool definition for ``name`` (used to check ``Mcp-Param-*`` headers). Override to avoid a full list."""
        return next((t for t in self.list_tools(ctx) if t.get("name") == name), None)

    # --- resources ---
    def list_resources(self, ctx: RequestContext) -> list[dict[str, Any]]:
        raise ProtocolError(-32601, "Method not found: resources/list")

    def list_resource_templates(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return []

    def read_resource(self, ctx: RequestContext, uri: str) -> list[dict[str, Any]] | dict[str, Any] | InputRequired:
        """Return the ``contents`` list (or a full ReadResourceResult dict). Raise ResourceNotFound."""
        raise ResourceNotFound(uri)

    def subscribe(self, ctx: RequestContext, uri: str) -> None:
        """Handshake era resources/subscribe; the session's list is kept by the protocol layer."""

    def unsubscribe(self, ctx: RequestContext, uri: str) -> None:
        """Handshake era resources/unsubscribe."""

    # --- prompts ---
    def list_prompts(self, ctx: RequestContext) -> list[dict[str, Any]]:
        raise ProtocolError(-32601, "Method not found: prompts/list")

    def get_prompt(self, ctx: RequestContext, name: str, arguments: dict[str, str]) -> dict[str, Any] | InputRequired:
        raise PromptNotFound(name)

    # --- completion ---
    def complete(self, ctx: RequestContext, ref: dict[str, Any], argument: dict[str, Any],
                 context: dict[str, Any] | None) -> dict[str, Any]:
        """Return ``{"values": [...], "total"?: int, "hasMore"?: bool}``."""
        return {"values": []}
