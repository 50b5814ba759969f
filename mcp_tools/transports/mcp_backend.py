"""The product behind MCP: tools, resources and prompts from the database, served by the protocol layer.

``DjangoBackend`` implements :class:`mcp_tools.protocol.Backend`; every ``tools/call``
goes through the one invocation pipeline (``tool_invoke``). ``get_dispatcher`` gives
the process-wide dispatcher of an endpoint (built once, rebuilt only when an admin
edits that endpoint). Transports (Streamable HTTP, legacy HTTP+SSE, stdio) pass an
:class:`McpPrincipal` as the dispatcher's ``principal``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import hmac
import json
import re
import threading
from typing import Any

from django.conf import settings

from ..exceptions import CallCancelled
from ..models import ApiToken, McpEndpoint, Prompt, Resource, Tool
from ..protocol import Backend, InputRequired, ProtocolError, PromptNotFound, ResourceNotFound, ToolNotFound
from ..protocol import Era, build_dispatcher, elicitation_request
from ..protocol import content as c
from ..protocol.dispatcher import Dispatcher
from ..protocol.jsonrpc import INVALID_PARAMS
from ..protocol.versions import HTTP_SSE_VERSION
from ..selectors import tools_for_token
from ..services.invocation import Caller, tool_invoke, tool_lookup
from ..services.lookup_cache import TOOLS, cached_lookup
from ..services.principals import oauth_scopes, tool_scope
from ..services.tokens import allowed_tool_ids
from . import mcp_tasks

CONFIRM_KEY = "confirm"
CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {"confirm": {"type": "boolean", "title": "Run it", "description": "Run this tool now?",
                               "default": False}},
    "required": ["confirm"],
}
# Pipeline error codes that mean "this caller cannot see that tool": answered like an unknown tool,
# so a token never learns which tools exist beyond its own.
_HIDDEN_TOOL_CODES = frozenset({"unknown_tool", "tool_disabled", "not_permitted"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class McpPrincipal:
    """Who is calling through which endpoint (the dispatcher's opaque ``principal``)."""

    credential: Any = None  # ApiToken / OAuth access token / None on a public endpoint
    endpoint: McpEndpoint | None = None  # None: the default endpoint /mcp
    client_ip: str | None = None
    transport: str = "mcp"
    public_tool_ids: frozenset = field(default_factory=frozenset)
    session_key: str = ""  # handshake era: the key of the session the request belongs to (live_events)

    def caller(self, protocol_version: str = "", confirmation: str = "",
               visible_tool_ids: frozenset | None = None) -> Caller:
        return Caller(token=self.credential, client_ip=self.client_ip, transport=self.transport,
                      protocol_version=protocol_version, confirmation=confirmation,
                      public_tool_ids=self.public_tool_ids, visible_tool_ids=visible_tool_ids)


def quiet_tool_call(params: dict[str, Any]) -> bool:
    """Can this handshake-era tools/call send nothing before its result? Then it needs no stream.

    The product never logs to clients; a call speaks early only for a progressToken, or to ask
    the user about a tool that requires confirmation. (Unknown tools are refused at once.)
    """
    meta = params.get("_meta")
    if isinstance(meta, dict) and meta.get("progressToken") is not None:
        return False
    tool = tool_lookup(params.get("name"))
    return tool is None or not tool.requires_confirmation


def principal_for(*, credential: Any, endpoint: McpEndpoint | None, client_ip: str | None,
                  transport: str = "mcp") -> McpPrincipal:
    public = frozenset()
    if endpoint is not None and not endpoint.requires_auth and credential is None:
        public = frozenset(endpoint.tools.values_list("pk", flat=True))
    return McpPrincipal(credential=credential, endpoint=endpoint, client_ip=client_ip, transport=transport,
                        public_tool_ids=public)


def tool_definition(tool: Tool) -> dict[str, Any]:
    """The MCP Tool object of a Tool row."""
    definition: dict[str, Any] = {"name": tool.name, "description": tool.description,
                                  "inputSchema": tool.input_schema or {"type": "object"}}
    if tool.title:
        definition["title"] = tool.title
    if tool.output_schema:
        definition["outputSchema"] = tool.output_schema
    annotations = {k: v for k, v in (tool.annotations or {}).items()
                   if k in ("title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")}
    if annotations:
        definition["annotations"] = annotations
    return definition


class InsufficientScope(ProtocolError):
    """An OAuth caller lacks the scope of an existing tool; the transport answers HTTP 403 (RFC 6750)."""

    def __init__(self, scope: str) -> None:
        super().__init__(INVALID_PARAMS, f"Insufficient scope: request an access token with scope '{scope}'.",
                         {"requiredScope": scope})


def _missing_oauth_scope(principal: McpPrincipal, name: Any) -> str | None:
    """The scope an OAuth caller would need for ``name``, if that tool exists and is enabled.

    OAuth clients may learn tool names (the RFC 9728 metadata lists every tool scope);
    API-token callers get "unknown tool" for anything outside their grant.
    """
    credential = principal.credential
    if credential is None or isinstance(credential, ApiToken) or not isinstance(name, str):
        return None
    if not Tool.objects.filter(name=name, enabled=True).exists():
        return None
    return tool_scope(name)


def _principal(ctx) -> McpPrincipal:
    principal = ctx.principal
    return principal if isinstance(principal, McpPrincipal) else McpPrincipal()


def _arguments_digest(arguments: dict[str, Any]) -> str:
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class _VisibleTools:
    tools: list
    definitions: list
    by_name: dict

    @classmethod
    def build(cls, tools: list[Tool]) -> "_VisibleTools":
        definitions = [tool_definition(t) for t in tools]
        return cls(tools=tools, definitions=definitions,
                   by_name={t.name: (t, d) for t, d in zip(tools, definitions)})


def _scope_key(principal: McpPrincipal) -> tuple:
    """What decides which tools a caller sees, besides the tools themselves (those bump the generation)."""
    endpoint = principal.endpoint.pk if principal.endpoint is not None else None
    credential = principal.credential
    if credential is None:
        return ("visible-public", endpoint, principal.public_tool_ids)
    if isinstance(credential, ApiToken):
        # The grants come with the (generation-checked) token row, so a grant change changes the key.
        ids = None if credential.all_tools else frozenset(allowed_tool_ids(credential))
        return ("visible-token", endpoint, ids)
    return ("visible-oauth", endpoint, frozenset(oauth_scopes(credential)))


class DjangoBackend(Backend):
    features = frozenset({"tools", "resources", "resource_subscriptions", "prompts", "completions", "logging"})
    # Delivered by the change streams (transports/mcp_changes.py): GET /mcp in the handshake era,
    # subscriptions/listen in 2026-07-28.
    list_changed = frozenset({"tools", "prompts", "resources"})

    # --- tools ---

    def visible_tools(self, ctx) -> list[Tool]:
        return self._visible(ctx).tools

    def _visible(self, ctx) -> "_VisibleTools":
        """The caller's tools with their MCP definitions, built once per (tools generation, caller's scope)."""
        principal = _principal(ctx)
        return cached_lookup(kind=TOOLS, key=_scope_key(principal),
                             load=lambda: _VisibleTools.build(self._load_visible_tools(principal)))

    def _load_visible_tools(self, principal: McpPrincipal) -> list[Tool]:
        endpoint = principal.endpoint
        if principal.credential is None:
            tools = [t for t in Tool.objects.filter(pk__in=principal.public_tool_ids, enabled=True).order_by("name")]
        else:
            tools = tools_for_token(principal.credential)
        if endpoint is not None and not endpoint.all_tools:
            chosen = set(endpoint.tools.values_list("pk", flat=True))
            tools = [t for t in tools if t.pk in chosen]
        return tools

    def list_tools(self, ctx) -> list[dict[str, Any]]:
        # The definitions are shared by every request of this scope: read them, never change them.
        visible = self._visible(ctx)
        if mcp_tasks.handshake_tasks(ctx):
            anonymous = _principal(ctx).credential is None
            return [{**definition, "execution": {"taskSupport": mcp_tasks.task_support(tool, anonymous=anonymous)}}
                    for definition, tool in zip(visible.definitions, visible.tools)]
        return list(visible.definitions)

    def get_tool(self, ctx, name: str) -> dict[str, Any] | None:
        found = self._visible(ctx).by_name.get(name) if isinstance(name, str) else None
        return found[1] if found else None

    def _visible_tool(self, ctx, name: str) -> Tool | None:
        found = self._visible(ctx).by_name.get(name) if isinstance(name, str) else None
        return found[0] if found else None

    def call_tool(self, ctx, name: str, arguments: dict[str, Any]):
        tool = self._visible_tool(ctx, name)
        if tool is None:
            self._refuse_invisible(ctx, name, arguments)
        mode = mcp_tasks.call_mode(ctx, tool, anonymous=_principal(ctx).credential is None)
        confirmation = ""
        if tool.requires_confirmation:
            answer = self._confirmation(ctx, tool, arguments)
            if isinstance(answer, InputRequired):
                return answer
            confirmation = answer
        caller = _principal(ctx).caller(protocol_version=ctx.protocol_version, confirmation=confirmation)

        def report_progress(progress, total=None, message=None):
            # A kind reporting progress is also a point where it can be stopped: the client cancelled
            # (notifications/cancelled) or went away. Atomic kinds' writes roll back.
            if ctx.is_cancelled():
                raise CallCancelled(f"The client cancelled the call to '{tool.name}'; it was stopped.")
            ctx.report_progress(progress, total, message)

        invocation = tool_invoke(name=name, arguments=arguments, caller=caller,
                                 request_id=str(ctx.correlation_id), report_progress=report_progress,
                                 as_task=mode == "task", task_ttl_s=mcp_tasks.requested_ttl_s(ctx),
                                 progress_token=ctx.progress_token if mode == "task" else None,
                                 task_session_key=_principal(ctx).session_key if mode == "task" else "")
        if mode == "task":
            if invocation.outcome == "queued":
                return mcp_tasks.create_task_result(ctx, invocation)
            if invocation.error_code in _HIDDEN_TOOL_CODES:
                raise ToolNotFound(tool.name)
            raise mcp_tasks.refused(invocation)
        return self.tool_call_result(tool, invocation)

    def _refuse_invisible(self, ctx, name: str, arguments: dict[str, Any]) -> None:
        """A call to a tool this caller cannot see: audited by the pipeline like on every door, then refused.

        The pipeline decides the outcome (unknown, disabled, not permitted) against the tools this
        door shows, so it cannot run the tool; the client hears "unknown tool" either way, or
        insufficient_scope when an OAuth token only lacks the scope of an existing tool.
        """
        visible = frozenset(t.pk for t in self._visible(ctx).tools)
        caller = _principal(ctx).caller(protocol_version=ctx.protocol_version, visible_tool_ids=visible)
        tool_invoke(name=name, arguments=arguments, caller=caller, request_id=str(ctx.correlation_id))
        scope = _missing_oauth_scope(_principal(ctx), name)
        if scope:
            raise InsufficientScope(scope)
        raise ToolNotFound(name)

    def _confirmation(self, ctx, tool: Tool, arguments: dict[str, Any]) -> str | InputRequired:
        """The user's answer ("accept" / "decline" / "cancel" / "unsupported") or a request to ask them.

        The answer only counts for the arguments it was given for: the digest travels in the
        (signed) request state, so a client cannot swap the arguments between rounds.
        """
        if ctx.era is Era.HANDSHAKE and not ctx.client_supports("elicitation"):
            return "unsupported"  # nobody can be asked: the pipeline refuses the call and audits why
        digest = _arguments_digest(arguments)
        reply = (ctx.input_responses or {}).get(CONFIRM_KEY)
        state = ctx.state or {}
        if isinstance(reply, dict) and state.get("arguments_digest") == digest:
            action = reply.get("action")
            if action == "accept":
                content = reply.get("content") if isinstance(reply.get("content"), dict) else {}
                return "accept" if content.get("confirm") is True else "decline"
            if action in ("decline", "cancel"):
                return action
        summary = json.dumps(arguments, ensure_ascii=False, default=str)
        if len(summary) > 500:
            summary = summary[:500] + "…"
        message = f"Run '{tool.title or tool.name}' with {summary}?"
        return InputRequired({CONFIRM_KEY: elicitation_request(message, CONFIRM_SCHEMA)},
                             state={"arguments_digest": digest})

    def tool_call_result(self, tool: Tool | None, invocation, hide: bool = True) -> dict[str, Any]:
        """The CallToolResult of an invocation (also of a finished task: ``hide=False``)."""
        if invocation.outcome == "queued":
            return c.tool_result([c.text(
                f"Queued as task {invocation.task_id}; the result will be available from "
                f"GET /mcp/v1/tasks/{invocation.task_id}.")])
        if invocation.ok:
            result = invocation.result
            if tool is not None and tool.output_schema and isinstance(result, dict):
                return c.tool_result(structured=result)
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
            return c.tool_result([c.text(text)])
        if hide and invocation.error_code in _HIDDEN_TOOL_CODES:
            raise ToolNotFound(tool.name)
        message = invocation.message
        if invocation.retry_after_s:
            message = f"{message} Retry after {invocation.retry_after_s}s."
        return c.tool_error(message)

    # --- resources ---

    def _resources(self, ctx):
        endpoint = _principal(ctx).endpoint
        resources = Resource.objects.filter(enabled=True).order_by("uri")
        if endpoint is not None and not endpoint.all_resources:
            resources = resources.filter(mcp_endpoints=endpoint)
        return list(resources)

    def list_resources(self, ctx) -> list[dict[str, Any]]:
        return [_resource_definition(r) for r in self._resources(ctx) if not is_template_uri(r.uri)]

    def list_resource_templates(self, ctx) -> list[dict[str, Any]]:
        templates = []
        for r in self._resources(ctx):
            if is_template_uri(r.uri):
                definition = _resource_definition(r)
                definition["uriTemplate"] = definition.pop("uri")
                templates.append(definition)
        return templates

    def read_resource(self, ctx, uri: str):
        resources = self._resources(ctx)  # one query: exact URIs win over templates
        for r in resources:
            if r.uri == uri:
                return [c.text_resource_contents(uri, r.text, r.mime_type)]
        for r in resources:
            if is_template_uri(r.uri):
                values = match_template_uri(r.uri, uri)
                if values is not None:
                    return [c.text_resource_contents(uri, _fill(r.text, values), r.mime_type)]
        raise ResourceNotFound(uri)

    def subscribe(self, ctx, uri: str) -> None:
        """Only a resource this caller can read may be subscribed to (a template's URIs included)."""
        resources = self._resources(ctx)
        if not any(r.uri == uri or (is_template_uri(r.uri) and match_template_uri(r.uri, uri) is not None)
                   for r in resources):
            raise ResourceNotFound(uri)

    # --- prompts ---

    def _prompts(self, ctx):
        endpoint = _principal(ctx).endpoint
        prompts = Prompt.objects.filter(enabled=True).order_by("name")
        if endpoint is not None and not endpoint.all_prompts:
            prompts = prompts.filter(mcp_endpoints=endpoint)
        return list(prompts)

    def _prompt(self, ctx, name: str) -> Prompt | None:
        return next((p for p in self._prompts(ctx) if p.name == name), None)

    def list_prompts(self, ctx) -> list[dict[str, Any]]:
        result = []
        for p in self._prompts(ctx):
            definition: dict[str, Any] = {"name": p.name}
            if p.title:
                definition["title"] = p.title
            if p.description:
                definition["description"] = p.description
            arguments = [_prompt_argument(a) for a in _declared_arguments(p)]
            if arguments:
                definition["arguments"] = arguments
            result.append(definition)
        return result

    def get_prompt(self, ctx, name: str, arguments: dict[str, str]) -> dict[str, Any]:
        prompt = self._prompt(ctx, name)
        if prompt is None:
            raise PromptNotFound(name)
        declared = _declared_arguments(prompt)
        missing = [a["name"] for a in declared if a.get("required") and not arguments.get(a["name"])]
        if missing:
            raise ProtocolError(INVALID_PARAMS, f"Missing required argument(s) for prompt '{name}': "
                                                f"{', '.join(missing)}", {"missing": missing})
        text = _fill(_without_missing(prompt.template, declared, arguments), _prompt_values(declared, arguments))
        result: dict[str, Any] = {"messages": [{"role": "user", "content": c.text(text)}]}
        if prompt.description:
            result["description"] = prompt.description
        return result

    # --- completion ---

    def complete(self, ctx, ref, argument, context) -> dict[str, Any]:
        if ref.get("type") != "ref/prompt":
            return {"values": []}
        prompt = self._prompt(ctx, str(ref.get("name", "")))
        if prompt is None:
            raise PromptNotFound(str(ref.get("name", "")))
        spec = next((a for a in _declared_arguments(prompt) if a["name"] == argument.get("name")), None)
        if spec is None:
            return {"values": []}
        options = spec.get("enum") or spec.get("values") or []
        typed = str(argument.get("value") or "").lower()
        values = [str(v) for v in options if str(v).lower().startswith(typed)]
        return {"values": values, "total": len(values), "hasMore": False}


# --- helpers for resources and prompts ------------------------------------------------------------

def _resource_definition(r: Resource) -> dict[str, Any]:
    definition: dict[str, Any] = {"uri": r.uri, "name": r.name, "mimeType": r.mime_type}
    if r.title:
        definition["title"] = r.title
    if r.description:
        definition["description"] = r.description
    return definition


def is_template_uri(uri: str) -> bool:
    return bool(_PLACEHOLDER.search(uri))


def match_template_uri(template: str, uri: str) -> dict[str, str] | None:
    """Level-1 RFC 6570 match: ``docs://{slug}`` against ``docs://intro`` -> {"slug": "intro"}."""
    pattern, pos = "", 0
    for m in _PLACEHOLDER.finditer(template):
        pattern += re.escape(template[pos:m.start()]) + f"(?P<{m.group(1)}>[^/?#]+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    match = re.fullmatch(pattern, uri)
    return match.groupdict() if match else None


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders with values; unknown placeholders stay as written.

    Not ``str.format``: a value or template can never reach attributes or indexes.
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def _prompt_values(declared: list[dict[str, Any]], arguments: dict[str, str]) -> dict[str, str]:
    """Each declared argument's value: the client's, else the definition's ``default`` (a string)."""
    values = {}
    for spec in declared:
        given = arguments.get(spec["name"])
        if given:
            values[spec["name"]] = str(given)
        elif isinstance(spec.get("default"), str):
            values[spec["name"]] = spec["default"]
    return values


_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|$)[ \t]*")


def _without_missing(template: str, declared: list[dict[str, Any]], arguments: dict[str, str]) -> str:
    """The template minus each sentence that mentions an optional argument with no value and no default.

    A sentence ends at ``.``, ``!``, ``?`` or a line break; a line left empty by the cut disappears, so a
    client that omits an optional argument reads plain text, never "from  and ..." or a raw ``{name}``.
    """
    values = _prompt_values(declared, arguments)
    missing = {spec["name"] for spec in declared if spec["name"] not in values}
    if not missing:
        return template

    def mentions_missing(sentence: str) -> bool:
        return any(m.group(1) in missing for m in _PLACEHOLDER.finditer(sentence))

    lines = []
    for line in template.split("\n"):
        kept = "".join(s for s in _SENTENCE.findall(line) if not mentions_missing(s))
        if kept.strip() or not line.strip():
            lines.append(kept.rstrip() if kept != line else line)
    return "\n".join(lines).strip("\n")


def _declared_arguments(prompt: Prompt) -> list[dict[str, Any]]:
    return [a for a in (prompt.arguments or []) if isinstance(a, dict) and isinstance(a.get("name"), str)]


def _prompt_argument(spec: dict[str, Any]) -> dict[str, Any]:
    argument: dict[str, Any] = {"name": spec["name"]}
    for key in ("title", "description"):
        if isinstance(spec.get(key), str) and spec[key]:
            argument[key] = spec[key]
    if spec.get("required"):
        argument["required"] = True
    return argument


# --- the process-wide dispatchers ---------------------------------------------------------------

CONFORMANCE_SLUG = "conformance"
_DISPATCHERS: dict[str, tuple[Any, Dispatcher]] = {}
_DISPATCHERS_LOCK = threading.Lock()


def server_info() -> dict[str, Any]:
    return {"name": "mcp-tool-server", "title": "MCP tool server", "version": settings.VERSION}


def state_key() -> bytes:
    """Signs requestState and list cursors; the same on every worker (derived from SECRET_KEY)."""
    return hmac.new(settings.SECRET_KEY.encode(), b"mcp-request-state", hashlib.sha256).digest()


# Pagination needs a page size of at least one; "everything in one page" is this.
_ONE_PAGE = 1 << 30
HTTP_SSE_DOOR = "sse"


def page_size_for(endpoint: McpEndpoint | None, door: str = "") -> int:
    """Items per list page: the endpoint's own setting, else the door's default (0 in either: one page)."""
    size = endpoint.page_size if endpoint is not None and endpoint.page_size is not None else (
        settings.MCP_SSE_PAGE_SIZE if door == HTTP_SSE_DOOR else settings.MCP_PAGE_SIZE)
    return size or _ONE_PAGE


def get_dispatcher(endpoint: McpEndpoint | None = None, door: str = "") -> Dispatcher:
    """The dispatcher for ``endpoint`` (None: the default /mcp), built once per process.

    An endpoint's dispatcher is rebuilt only after an admin changed that endpoint
    (its ``updated_at`` moved), since the instructions it announces are baked in.
    ``door`` "sse" (HTTP+SSE) also negotiates 2024-11-05, the revision that defined that transport.
    """
    slug = (endpoint.slug if endpoint is not None else "") + (f"\0{door}" if door else "")
    version = endpoint.updated_at if endpoint is not None else None
    cached = _DISPATCHERS.get(slug)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _DISPATCHERS_LOCK:
        cached = _DISPATCHERS.get(slug)
        if cached is None or cached[0] != version:
            instructions = (endpoint.instructions if endpoint is not None else "") or \
                getattr(settings, "MCP_INSTRUCTIONS", "") or None
            backend = DjangoBackend()
            dispatcher = mcp_tasks.install_tasks(
                build_dispatcher(backend, server_info=server_info(), state_key=state_key(),
                                 instructions=instructions, page_size=page_size_for(endpoint, door),
                                 older_versions=(HTTP_SSE_VERSION,) if door == HTTP_SSE_DOOR else ()), backend)
            cached = (version, dispatcher)
            _DISPATCHERS[slug] = cached
    return cached[1]


def get_conformance_dispatcher() -> Dispatcher | None:
    """The test-only fixture server of the conformance suite, or None unless MCP_CONFORMANCE_FIXTURES is on."""
    if not getattr(settings, "MCP_CONFORMANCE_FIXTURES", False):
        return None
    cached = _DISPATCHERS.get("\0conformance")
    if cached is None:
        from .conformance_server import build_conformance_dispatcher  # imported only when enabled

        with _DISPATCHERS_LOCK:
            cached = _DISPATCHERS.setdefault("\0conformance", (None, build_conformance_dispatcher(state_key())))
    return cached[1]
