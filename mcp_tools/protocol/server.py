"""Registers the MCP methods of both eras on a :class:`Dispatcher`, on top of a :class:`Backend`."""
from __future__ import annotations

from typing import Any

from .backend import Backend, ResourceNotFound
from .content import paginate
from .context import LOG_LEVELS, RequestContext, SessionState
from .headers import check_param_headers
from .dispatcher import ListenSubscription, Dispatcher, new_session_result
from .jsonrpc import INVALID_PARAMS, RESOURCE_NOT_FOUND, ProtocolError
from .versions import (
    BEFORE_2025_06_18,
    HTTP_SSE_VERSION,
    META_SERVER_INFO,
    Era,
    negotiate_handshake_version,
)

H = (Era.HANDSHAKE,)
S = (Era.STATELESS,)
BOTH = (Era.HANDSHAKE, Era.STATELESS)

# Tool fields that 2025-03-26 clients do not know; 2024-11-05 clients do not know annotations either.
_TOOL_FIELDS_AFTER_2025_03_26 = ("title", "outputSchema", "icons", "execution")
_TOOL_FIELDS_AFTER_2024_11_05 = _TOOL_FIELDS_AFTER_2025_03_26 + ("annotations",)


def build_dispatcher(backend: Backend, *, server_info: dict[str, Any], state_key: bytes,
                     instructions: str | None = None, page_size: int = 100, **dispatcher_options: Any) -> Dispatcher:
    """A Dispatcher serving ``backend`` in both eras.

    ``state_key`` signs requestState and pagination cursors; use the same key on every worker.
    """
    unknown = set(backend.features) - {"tools", "resources", "resource_subscriptions", "prompts", "completions",
                                       "logging"}
    if unknown:
        raise ValueError(f"unknown backend features: {sorted(unknown)}")
    extra: dict[str, Any] = dict(dispatcher_options.pop("extra_capabilities", {}))
    for feature in backend.list_changed:
        extra.setdefault(feature, {})["listChanged"] = True
    if "resource_subscriptions" in backend.features:
        extra.setdefault("resources", {})["subscribe"] = True
    d = Dispatcher(server_info=server_info, state_key=state_key, instructions=instructions,
                   extra_capabilities=extra, stateless_logging="logging" in backend.features, **dispatcher_options)
    methods = _Methods(backend, d, page_size)

    d.register("initialize", methods.initialize, H)
    d.register("ping", methods.ping, H)
    d.register("server/discover", methods.discover, S)
    d.register("subscriptions/listen", methods.listen, S)
    d.register("tools/list", methods.list_tools, BOTH)
    d.register("tools/call", methods.call_tool, BOTH)
    if "resources" in backend.features:
        d.register("resources/list", methods.list_resources, BOTH)
        d.register("resources/templates/list", methods.list_resource_templates, BOTH)
        d.register("resources/read", methods.read_resource, BOTH)
        if "resource_subscriptions" in backend.features:
            d.register("resources/subscribe", methods.subscribe, H)
            d.register("resources/unsubscribe", methods.unsubscribe, H)
    if "prompts" in backend.features:
        d.register("prompts/list", methods.list_prompts, BOTH)
        d.register("prompts/get", methods.get_prompt, BOTH)
    if "completions" in backend.features:
        d.register("completion/complete", methods.complete, BOTH)
    if "logging" in backend.features:
        d.register("logging/setLevel", methods.set_level, H)
    return d


def _string(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(INVALID_PARAMS, f"Invalid params: '{key}' must be a non-empty string")
    return value


def _object(params: dict[str, Any], key: str) -> dict[str, Any]:
    value = params.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(INVALID_PARAMS, f"Invalid params: '{key}' must be an object")
    return value


class _Methods:
    def __init__(self, backend: Backend, dispatcher: Dispatcher, page_size: int) -> None:
        self.backend = backend
        self.d = dispatcher
        self.page_size = page_size

    # --- lifecycle ---

    def initialize(self, ctx: RequestContext):
        p = ctx.params
        caps = p.get("capabilities")
        info = p.get("clientInfo")
        if not isinstance(p.get("protocolVersion"), str) or not isinstance(caps, dict) or not isinstance(info, dict):
            raise ProtocolError(INVALID_PARAMS,
                                "Invalid params: initialize needs protocolVersion, capabilities and clientInfo")
        version = negotiate_handshake_version(p["protocolVersion"], self.d.older_versions)
        session = SessionState(protocol_version=version, client_capabilities=caps, client_info=info)
        capabilities = self.d.capabilities(Era.HANDSHAKE)
        if version == HTTP_SSE_VERSION:
            capabilities.pop("completions", None)  # declared from 2025-03-26 on; the method itself existed
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": capabilities,
            "serverInfo": _server_info_for(self.d.server_info, version),
        }
        if self.d.instructions:
            result["instructions"] = self.d.instructions
        return new_session_result(session, result)

    def ping(self, ctx: RequestContext) -> dict[str, Any]:
        return {}

    def discover(self, ctx: RequestContext) -> dict[str, Any]:
        result: dict[str, Any] = {
            "supportedVersions": list(self.d.supported_versions),
            "capabilities": self.d.capabilities(Era.STATELESS),
            "_meta": {META_SERVER_INFO: dict(self.d.server_info)},
        }
        if self.d.instructions:
            result["instructions"] = self.d.instructions
        return result

    def listen(self, ctx: RequestContext) -> ListenSubscription:
        wanted = ctx.params.get("notifications")
        if not isinstance(wanted, dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: 'notifications' filter object is required")
        caps = self.d.capabilities(Era.STATELESS)
        accepted: dict[str, Any] = {}
        for flag, feature in (("toolsListChanged", "tools"), ("promptsListChanged", "prompts"),
                              ("resourcesListChanged", "resources")):
            if wanted.get(flag) is True and caps.get(feature, {}).get("listChanged"):
                accepted[flag] = True
        uris = wanted.get("resourceSubscriptions")
        if isinstance(uris, list) and caps.get("resources", {}).get("subscribe"):
            accepted["resourceSubscriptions"] = [u for u in uris if isinstance(u, str)]
        return ListenSubscription(request_id=ctx.request_id, accepted=accepted)

    def set_level(self, ctx: RequestContext) -> dict[str, Any]:
        level = ctx.params.get("level")
        if level not in LOG_LEVELS:
            raise ProtocolError(INVALID_PARAMS, f"Invalid params: level must be one of {', '.join(LOG_LEVELS)}")
        assert ctx.session is not None  # handshake era requests always carry one
        ctx.session.log_level = level
        ctx.session_dirty = True
        return {}

    # --- tools ---

    def list_tools(self, ctx: RequestContext) -> dict[str, Any]:
        tools = self.backend.list_tools(ctx)
        if ctx.protocol_version in BEFORE_2025_06_18:
            unknown = _TOOL_FIELDS_AFTER_2024_11_05 if ctx.protocol_version == HTTP_SSE_VERSION \
                else _TOOL_FIELDS_AFTER_2025_03_26
            tools = [{k: v for k, v in t.items() if k not in unknown} for t in tools]
        return self._page(ctx, "tools", tools)

    def call_tool(self, ctx: RequestContext):
        name = _string(ctx.params, "name")
        arguments = _object(ctx.params, "arguments")
        if ctx.era is Era.STATELESS and ctx.headers is not None:
            definition = self.backend.get_tool(ctx, name)
            if definition is not None:
                check_param_headers(ctx.headers, definition.get("inputSchema") or {}, arguments)
        result = self.backend.call_tool(ctx, name, arguments)
        if isinstance(result, dict) and ctx.protocol_version in BEFORE_2025_06_18:
            result = {k: v for k, v in result.items() if k != "structuredContent"}
        return result

    # --- resources ---

    def list_resources(self, ctx: RequestContext) -> dict[str, Any]:
        return self._page(ctx, "resources", self.backend.list_resources(ctx))

    def list_resource_templates(self, ctx: RequestContext) -> dict[str, Any]:
        return self._page(ctx, "resourceTemplates", self.backend.list_resource_templates(ctx))

    def read_resource(self, ctx: RequestContext):
        uri = _string(ctx.params, "uri")
        try:
            result = self.backend.read_resource(ctx, uri)
        except ResourceNotFound as exc:
            if ctx.era is Era.HANDSHAKE:
                raise ProtocolError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri}) from exc
            raise
        if isinstance(result, list):
            result = {"contents": result}
        if isinstance(result, dict) and not result.get("contents"):
            # SEP-2164: never answer an unknown resource with an empty contents array.
            raise ResourceNotFound(uri) if ctx.era is Era.STATELESS else ProtocolError(
                RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri})
        return result

    def subscribe(self, ctx: RequestContext) -> dict[str, Any]:
        uri = _string(ctx.params, "uri")
        try:
            self.backend.subscribe(ctx, uri)
        except ResourceNotFound as exc:  # handshake era only: its code, as resources/read answers it
            raise ProtocolError(RESOURCE_NOT_FOUND, "Resource not found", {"uri": uri}) from exc
        assert ctx.session is not None
        if uri not in ctx.session.subscriptions:
            ctx.session.subscriptions.append(uri)
            ctx.session_dirty = True
        return {}

    def unsubscribe(self, ctx: RequestContext) -> dict[str, Any]:
        uri = _string(ctx.params, "uri")
        self.backend.unsubscribe(ctx, uri)
        assert ctx.session is not None
        if uri in ctx.session.subscriptions:
            ctx.session.subscriptions.remove(uri)
            ctx.session_dirty = True
        return {}

    # --- prompts ---

    def list_prompts(self, ctx: RequestContext) -> dict[str, Any]:
        return self._page(ctx, "prompts", self.backend.list_prompts(ctx))

    def get_prompt(self, ctx: RequestContext):
        name = _string(ctx.params, "name")
        arguments = _object(ctx.params, "arguments")
        if not all(isinstance(v, str) for v in arguments.values()):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: prompt arguments must be strings")
        return self.backend.get_prompt(ctx, name, arguments)

    # --- completion ---

    def complete(self, ctx: RequestContext) -> dict[str, Any]:
        ref = _object(ctx.params, "ref")
        argument = _object(ctx.params, "argument")
        if ref.get("type") not in ("ref/prompt", "ref/resource") or not isinstance(argument.get("name"), str):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: completion needs a ref and an argument name")
        context = ctx.params.get("context") if isinstance(ctx.params.get("context"), dict) else None
        completion = dict(self.backend.complete(ctx, ref, argument, context))
        values = list(completion.get("values") or [])
        if len(values) > 100:  # the schema caps one reply at 100 values
            completion["hasMore"] = True
            completion.setdefault("total", len(values))
            values = values[:100]
        completion["values"] = values
        return {"completion": completion}

    # --- helpers ---

    def _page(self, ctx: RequestContext, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        page, next_cursor = paginate(items, ctx.params.get("cursor"), key=self.d.state_key, scope=ctx.method,
                                     page_size=self.page_size)
        result: dict[str, Any] = {key: page}
        if next_cursor:
            result["nextCursor"] = next_cursor
        return result


def _server_info_for(info: dict[str, Any], version: str) -> dict[str, Any]:
    """Implementation fields grew over revisions; keep only what the negotiated one knows."""
    allowed = {HTTP_SSE_VERSION: {"name", "version"}, "2025-03-26": {"name", "version"},
               "2025-06-18": {"name", "version", "title"}}.get(version)
    if allowed is None:
        return dict(info)
    return {k: v for k, v in info.items() if k in allowed}
