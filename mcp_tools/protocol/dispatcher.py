"""The dispatcher: method name -> handler, and the one place exceptions become JSON-RPC errors.

It knows nothing about tools. ``server.py`` registers the MCP methods on it.
A transport calls :meth:`Dispatcher.handle` once per incoming message and
turns the returned :class:`Outcome` into an HTTP response (JSON or SSE) or a
stdio line.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import jsonrpc
from .context import (
    CAPABILITY_FOR_METHOD,
    LOG_LEVELS,
    InputRequired,
    MissingClientCapability,
    NullOutbound,
    Outbound,
    RequestContext,
    SessionState,
)
from .headers import check_handshake_version_header, check_request_headers
from .jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    ErrorResponse,
    InvalidMessage,
    Message,
    Notification,
    ProtocolError,
    Request,
    Response,
)
from .request_state import sign_request_state, verify_request_state
from .versions import (
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SUBSCRIPTION_ID,
    STATELESS_VERSIONS,
    SUPPORTED_VERSIONS,
    Era,
    detect_era,
)

logger = logging.getLogger("mcp_tools.protocol")

Handler = Callable[[RequestContext], Any]
BOTH_ERAS: frozenset[Era] = frozenset({Era.HANDSHAKE, Era.STATELESS})

# Methods whose result may be an input_required result (SEP-2322).
INPUT_REQUIRED_METHODS = frozenset({"tools/call", "prompts/get", "resources/read", "tasks/result"})
# Stateless-era results that must carry ttlMs + cacheScope (SEP-2549).
CACHEABLE_METHODS = frozenset(
    {"server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"}
)
# Handshake-era methods allowed before/without an initialized session.
SESSIONLESS_METHODS = frozenset({"initialize", "ping"})
# Result keys that only exist in the stateless era.
_STATELESS_RESULT_KEYS = ("resultType", "ttlMs", "cacheScope")

_CAPABILITY_PREFIXES = {"tools/": "tools", "resources/": "resources", "prompts/": "prompts"}
_FEATURE_CAPABILITIES = frozenset({"tools", "resources", "prompts", "completions", "logging"})


@dataclass
class ListenSubscription:
    """Returned by a subscriptions/listen handler; the transport drives the long-lived stream.

    Send :meth:`acknowledgement` first, then one :meth:`notification` per change
    the filter :meth:`wants`, and :meth:`final_response` when closing the stream.
    """

    request_id: jsonrpc.RequestId
    accepted: dict[str, Any]  # the SubscriptionFilter subset the server honours

    def acknowledgement(self) -> dict[str, Any]:
        return jsonrpc.notification_message(
            "notifications/subscriptions/acknowledged",
            {"notifications": self.accepted, "_meta": {META_SUBSCRIPTION_ID: self.request_id}},
        )

    def wants(self, method: str, params: Mapping[str, Any] | None = None) -> bool:
        if method == "notifications/tools/list_changed":
            return bool(self.accepted.get("toolsListChanged"))
        if method == "notifications/prompts/list_changed":
            return bool(self.accepted.get("promptsListChanged"))
        if method == "notifications/resources/list_changed":
            return bool(self.accepted.get("resourcesListChanged"))
        if method == "notifications/resources/updated":
            uri = (params or {}).get("uri")
            return uri in (self.accepted.get("resourceSubscriptions") or [])
        return False

    def notification(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        tagged = dict(params or {})
        meta = dict(tagged.get("_meta") or {})
        meta[META_SUBSCRIPTION_ID] = self.request_id
        tagged["_meta"] = meta
        return jsonrpc.notification_message(method, tagged)

    def final_response(self) -> dict[str, Any]:
        return jsonrpc.result_response(
            self.request_id, {"resultType": "complete", "_meta": {META_SUBSCRIPTION_ID: self.request_id}}
        )


@dataclass
class Outcome:
    """What the transport must do with one incoming message."""

    kind: str  # "response" | "accepted" (notification / client response) | "listen"
    era: Era
    http_status: int
    response: dict[str, Any] | None = None
    protocol_version: str | None = None
    session: SessionState | None = None  # current handshake session (new one after initialize)
    session_changed: bool = False  # persist ``session`` when True
    client_response: Response | ErrorResponse | None = None  # route to the waiting send_request
    cancelled_request_id: jsonrpc.RequestId | None = None
    subscription: ListenSubscription | None = None

    @property
    def is_error(self) -> bool:
        return bool(self.response and "error" in self.response)


@dataclass
class _Route:
    handler: Handler
    eras: frozenset[Era]


def may_send_before_response(message: Request, headers: Mapping[str, str] | None = None, *,
                             has_session: bool = False) -> bool:
    """Whether handling ``message`` could send anything ahead of its response (a transport streams only then).

    Handshake era: yes (log messages flow until logging/setLevel narrows them; the server may ask the
    client). 2026-07-28: only progress for a ``progressToken`` and log messages for a ``logLevel`` the
    request's ``_meta`` asks for; server-to-client requests do not exist there (``input_required``
    results replace them).
    """
    if detect_era(message, headers, has_session=has_session) is not Era.STATELESS:
        return True
    meta = message.params.get("_meta")
    return isinstance(meta, dict) and (meta.get("progressToken") is not None
                                       or meta.get(META_LOG_LEVEL) is not None)


def http_status_for_error(code: int, era: Era) -> int:
    """Suggested HTTP status for a JSON-RPC error on Streamable HTTP."""
    if code in (jsonrpc.PARSE_ERROR, INVALID_REQUEST):
        return 400
    if era is Era.STATELESS:
        if code == METHOD_NOT_FOUND:
            return 404
        if code in (INVALID_PARAMS, jsonrpc.HEADER_MISMATCH, jsonrpc.MISSING_REQUIRED_CLIENT_CAPABILITY,
                    jsonrpc.UNSUPPORTED_PROTOCOL_VERSION):
            return 400
    return 200


@dataclass
class Dispatcher:
    """Routes JSON-RPC methods to handlers per protocol era.

    ``state_key`` signs 2026-07-28 ``requestState`` values; give every worker the
    same key (e.g. derived from Django's SECRET_KEY).
    """

    server_info: dict[str, Any]
    state_key: bytes
    instructions: str | None = None
    supported_versions: tuple[str, ...] = SUPPORTED_VERSIONS
    # Older handshake revisions this dispatcher also negotiates (HTTP+SSE offers 2024-11-05).
    older_versions: tuple[str, ...] = ()
    extra_capabilities: dict[str, Any] = field(default_factory=dict)
    state_ttl_s: float = 15 * 60
    max_input_rounds: int = 8
    cache_ttl_ms: int = 0
    cache_scope: str = "private"
    stateless_logging: bool = True  # honour _meta logLevel (2026-07-28) and declare `logging`
    _routes: dict[str, _Route] = field(default_factory=dict, init=False)
    _notifications: dict[str, _Route] = field(default_factory=dict, init=False)

    # --- registration ----------------------------------------------------

    def register(self, method: str, handler: Handler, eras: Iterable[Era] = BOTH_ERAS) -> None:
        self._routes[method] = _Route(handler, frozenset(eras))

    def register_notification(self, method: str, handler: Handler, eras: Iterable[Era] = BOTH_ERAS) -> None:
        self._notifications[method] = _Route(handler, frozenset(eras))

    def handler(self, method: str) -> Handler:
        """The handler registered for ``method``, e.g. to wrap it with one that adds a capability."""
        return self._routes[method].handler

    def methods(self, era: Era) -> set[str]:
        return {m for m, r in self._routes.items() if era in r.eras}

    def capabilities(self, era: Era) -> dict[str, Any]:
        """ServerCapabilities derived from what is registered for ``era``.

        ``extra_capabilities`` refines present features (e.g. ``{"tools": {"listChanged": True}}``)
        and adds non-feature keys (``experimental``, ``extensions``); it never invents a
        feature whose methods are not registered.
        """
        methods = self.methods(era)
        caps: dict[str, Any] = {}
        for prefix, name in _CAPABILITY_PREFIXES.items():
            if any(m.startswith(prefix) for m in methods):
                caps[name] = {}
        if "completion/complete" in methods:
            caps["completions"] = {}
        if "logging/setLevel" in methods or (era is Era.STATELESS and self.stateless_logging):
            caps["logging"] = {}
        if "resources/subscribe" in methods and "resources" in caps:
            caps["resources"]["subscribe"] = True
        for name, value in self.extra_capabilities.items():
            if name in caps:
                caps[name] = {**caps[name], **value}
            elif name not in _FEATURE_CAPABILITIES:
                caps[name] = value
        return caps

    # --- entry point -----------------------------------------------------

    def handle(
        self,
        message: Message | bytes | str,
        *,
        headers: Mapping[str, str] | None = None,
        session: SessionState | None = None,
        outbound: Outbound | None = None,
        principal: Any = None,
        correlation_id: str | None = None,
    ) -> Outcome:
        """Process one client message. Never raises for client-caused or handler failures.

        ``headers`` (HTTP only) enables the 2026-07-28 header checks; ``session`` is the
        loaded handshake-era session, if the request carried a known session id.
        """
        correlation_id = correlation_id or uuid.uuid4().hex[:16]
        if not isinstance(message, (Request, Notification, Response, ErrorResponse)):
            try:
                message = jsonrpc.parse_message(message)
            except InvalidMessage as exc:
                envelope = jsonrpc.error_response(exc.request_id, exc.code, exc.message)
                return Outcome(kind="response", era=Era.HANDSHAKE, http_status=400, response=envelope)

        era = detect_era(message, headers, has_session=session is not None)
        if isinstance(message, (Response, ErrorResponse)):
            return Outcome(kind="accepted", era=era, http_status=202, client_response=message, session=session)
        if isinstance(message, Notification):
            return self._handle_notification(message, era, session, outbound, principal, correlation_id)
        return self._handle_request(message, era, headers, session, outbound, principal, correlation_id)

    # --- notifications ---------------------------------------------------

    def _handle_notification(self, message: Notification, era: Era, session: SessionState | None,
                             outbound: Outbound | None, principal: Any, correlation_id: str) -> Outcome:
        outcome = Outcome(kind="accepted", era=era, http_status=202, session=session)
        if message.method == "notifications/cancelled":
            request_id = message.params.get("requestId")
            if isinstance(request_id, (str, int)) and not isinstance(request_id, bool):
                outcome.cancelled_request_id = request_id
        if message.method == "notifications/initialized" and session is not None and not session.initialized:
            session.initialized = True
            outcome.session_changed = True
        route = self._notifications.get(message.method)
        if route is None or era not in route.eras:
            return outcome  # unknown notifications are ignored, per JSON-RPC
        ctx = RequestContext(
            request_id=None, method=message.method, params=message.params, era=era,
            protocol_version=session.protocol_version if session else "", outbound=outbound or NullOutbound(),
            client_capabilities=session.client_capabilities if session else {},
            client_info=session.client_info if session else None, session=session, principal=principal,
            correlation_id=correlation_id,
        )
        try:
            route.handler(ctx)
        except Exception:  # a notification has no reply channel; log and move on
            logger.exception("notification handler failed [ref=%s method=%s]", correlation_id, message.method)
        return outcome

    # --- requests --------------------------------------------------------

    def _handle_request(self, message: Request, era: Era, headers: Mapping[str, str] | None,
                        session: SessionState | None, outbound: Outbound | None, principal: Any,
                        correlation_id: str) -> Outcome:
        outcome = Outcome(kind="response", era=era, http_status=200, session=session)
        try:
            if era is Era.STATELESS:
                if headers is not None:
                    check_request_headers(headers, message)
                ctx = self._stateless_context(message, outbound, principal, correlation_id)
            else:
                if headers is not None:
                    check_handshake_version_header(headers, message)
                ctx = self._handshake_context(message, session, outbound, principal, correlation_id)
            ctx.headers = headers
            outcome.protocol_version = ctx.protocol_version or None
            route = self._routes.get(message.method)
            if route is None or era not in route.eras:
                raise ProtocolError(METHOD_NOT_FOUND, f"Method not found: {message.method}")
            if message.method in INPUT_REQUIRED_METHODS:
                self._load_input_round(ctx)
            result = self._run(route.handler, ctx)
            if isinstance(result, ListenSubscription):
                outcome.kind = "listen"
                outcome.subscription = result
                return outcome
            if isinstance(result, _NewSession):
                outcome.session = result.session
                outcome.session_changed = True
                outcome.protocol_version = result.session.protocol_version
                result = result.result
            elif ctx.session is not None and session is not None and ctx.session is session and ctx.session_dirty:
                outcome.session_changed = True
            outcome.response = jsonrpc.result_response(message.id, self._finish_result(ctx, result))
        except ProtocolError as exc:
            outcome.response = jsonrpc.error_response(message.id, exc.code, exc.message, exc.data)
            outcome.http_status = http_status_for_error(exc.code, era)
        except Exception:
            logger.exception("unhandled error in %s [ref=%s]", message.method, correlation_id)
            outcome.response = jsonrpc.error_response(
                message.id, INTERNAL_ERROR, f"Internal error (ref {correlation_id})", {"ref": correlation_id}
            )
            outcome.http_status = http_status_for_error(INTERNAL_ERROR, era)
        return outcome

    def _stateless_context(self, message: Request, outbound: Outbound | None, principal: Any,
                           correlation_id: str) -> RequestContext:
        meta = message.params.get("_meta")
        if not isinstance(meta, dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: params._meta is required")
        missing = [k for k in (META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES) if k not in meta]
        if missing:
            raise ProtocolError(INVALID_PARAMS, f"Invalid params: _meta is missing {', '.join(missing)}")
        version = meta[META_PROTOCOL_VERSION]
        caps = meta[META_CLIENT_CAPABILITIES]
        if not isinstance(caps, dict):
            raise ProtocolError(INVALID_PARAMS, "Invalid params: _meta clientCapabilities must be an object")
        stateless_supported = [v for v in self.supported_versions if v in STATELESS_VERSIONS]
        if not isinstance(version, str) or version not in stateless_supported:
            raise ProtocolError(
                jsonrpc.UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
                {"supported": list(self.supported_versions), "requested": str(version)},
            )
        log_level = meta.get(META_LOG_LEVEL)
        if log_level is not None and log_level not in LOG_LEVELS:
            raise ProtocolError(INVALID_PARAMS, "Invalid params: unknown _meta logLevel")
        info = meta.get(META_CLIENT_INFO)
        return RequestContext(
            request_id=message.id, method=message.method, params=message.params, era=Era.STATELESS,
            protocol_version=version, client_capabilities=caps, client_info=info if isinstance(info, dict) else None,
            outbound=outbound or NullOutbound(), principal=principal, log_level=log_level,
            correlation_id=correlation_id,
        )

    def _handshake_context(self, message: Request, session: SessionState | None, outbound: Outbound | None,
                           principal: Any, correlation_id: str) -> RequestContext:
        if session is None and message.method not in SESSIONLESS_METHODS:
            raise ProtocolError(INVALID_REQUEST, "Bad Request: no session; send initialize first")
        return RequestContext(
            request_id=message.id, method=message.method, params=message.params, era=Era.HANDSHAKE,
            protocol_version=session.protocol_version if session else "",
            client_capabilities=session.client_capabilities if session else {},
            client_info=session.client_info if session else None, outbound=outbound or NullOutbound(),
            session=session, principal=principal,
            # Handshake era: everything is sent until logging/setLevel narrows it.
            log_level=(session.log_level or "debug") if session else None,
            correlation_id=correlation_id,
        )

    def _load_input_round(self, ctx: RequestContext) -> None:
        """Stateless era: validate inputResponses and verify the signed requestState."""
        if ctx.era is not Era.STATELESS:
            return
        params = ctx.params
        if "inputResponses" in params:
            responses = params["inputResponses"]
            if not isinstance(responses, dict) or not all(isinstance(v, dict) for v in responses.values()):
                raise ProtocolError(INVALID_PARAMS, "Invalid params: inputResponses must map keys to result objects")
            ctx.input_responses = responses
        if "requestState" in params:
            verified = verify_request_state(
                params["requestState"], key=self.state_key, method=ctx.method, target=_target_of(ctx),
            )
            ctx.state = verified.data
            ctx.round = verified.round + 1

    def _run(self, handler: Handler, ctx: RequestContext) -> Any:
        result = handler(ctx)
        if not isinstance(result, InputRequired):
            return result
        if ctx.method not in INPUT_REQUIRED_METHODS:
            raise RuntimeError(f"{ctx.method} handlers may not return InputRequired")
        if ctx.era is Era.STATELESS:
            return self._input_required_result(ctx, result)
        # Handshake era: ask the client ourselves, then re-run the handler with the answers.
        for _ in range(self.max_input_rounds):
            self._check_input_capabilities(ctx, result)
            responses = {key: ctx.send_request(req["method"], req.get("params") or {})
                         for key, req in result.requests.items()}
            ctx.input_responses = responses
            ctx.state = result.state
            ctx.round += 1
            result = handler(ctx)
            if not isinstance(result, InputRequired):
                return result
        raise RuntimeError(f"{ctx.method} asked for input more than {self.max_input_rounds} times")

    def _check_input_capabilities(self, ctx: RequestContext, required: InputRequired) -> None:
        missing: dict[str, Any] = {}
        for req in required.requests.values():
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RuntimeError("input requests must be {'method': ..., 'params': ...} objects")
            cap = CAPABILITY_FOR_METHOD.get(req["method"])
            if cap and not ctx.client_supports(cap):
                missing[cap] = {}
        if missing:
            raise MissingClientCapability(missing)

    def _input_required_result(self, ctx: RequestContext, required: InputRequired) -> dict[str, Any]:
        self._check_input_capabilities(ctx, required)
        if not required.requests:
            raise RuntimeError("InputRequired needs at least one input request")
        state = sign_request_state(
            required.state or {}, key=self.state_key, method=ctx.method, target=_target_of(ctx),
            round=ctx.round, pending=tuple(required.requests), ttl_s=self.state_ttl_s,
        )
        requests = {k: {"method": v["method"], "params": v.get("params") or {}} for k, v in required.requests.items()}
        return {"resultType": "input_required", "inputRequests": requests, "requestState": state}

    def _finish_result(self, ctx: RequestContext, result: Any) -> dict[str, Any]:
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise RuntimeError(f"{ctx.method} handler returned {type(result).__name__}, expected dict")
        result = dict(result)
        if ctx.era is Era.HANDSHAKE:
            for key in _STATELESS_RESULT_KEYS:
                result.pop(key, None)
            return result
        result.setdefault("resultType", "complete")
        if ctx.method in CACHEABLE_METHODS and result["resultType"] == "complete":
            result.setdefault("ttlMs", self.cache_ttl_ms)
            result.setdefault("cacheScope", self.cache_scope)
        return result


@dataclass
class _NewSession:
    """Returned (via :func:`new_session_result`) by the initialize handler."""

    session: SessionState
    result: dict[str, Any]


def new_session_result(session: SessionState, result: dict[str, Any]) -> _NewSession:
    return _NewSession(session, result)


def _target_of(ctx: RequestContext) -> str | None:
    value = ctx.params.get("uri" if ctx.method == "resources/read" else "name")
    return value if isinstance(value, str) else None

