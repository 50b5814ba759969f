"""What a method handler receives: the request context and its outbound hooks.

The transport implements :class:`Outbound` (how a notification or a
server-to-client request reaches the client: an SSE stream, stdout, ...). The
dispatcher builds one :class:`RequestContext` per request and handlers use it
to log, report progress, or ask the client for input.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from .jsonrpc import (
    INTERNAL_ERROR,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    ProtocolError,
    RequestId,
    notification_message,
    request_message,
)
from .versions import BEFORE_2025_06_18, Era

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

# Which client capability a server-to-client request (or input request) needs.
CAPABILITY_FOR_METHOD: dict[str, str] = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}


class Outbound(Protocol):
    """Implemented by the transport."""

    def send_notification(self, message: dict[str, Any]) -> None:
        """Deliver a JSON-RPC notification related to the current request (e.g. an SSE event)."""

    def send_request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """Send a server-to-client JSON-RPC request and block until the client answers.

        Return the ``result`` object; raise :class:`ProtocolError` for an error reply
        or a timeout. Only used in the handshake era.
        """

    def is_cancelled(self) -> bool:
        """True once the client cancelled the request (notifications/cancelled or a closed stream)."""


class NullOutbound:
    """For plain JSON replies: notifications are dropped, client requests are impossible."""

    def send_notification(self, message: dict[str, Any]) -> None:
        return None

    def send_request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        raise ProtocolError(INTERNAL_ERROR, "This transport cannot send requests to the client")

    def is_cancelled(self) -> bool:
        return False


class MissingClientCapability(ProtocolError):
    """-32021: the request needs a client capability the client did not declare."""

    def __init__(self, capabilities: dict[str, Any]) -> None:
        names = ", ".join(sorted(capabilities))
        super().__init__(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            f"Missing required client capability: {names}",
            {"requiredCapabilities": capabilities},
        )


@dataclass
class InputRequired:
    """Returned by a tools/call, prompts/get or resources/read handler that needs client input.

    ``requests`` maps server-chosen keys to ``{"method": ..., "params": ...}``
    (build them with :func:`elicitation_request` and friends). ``state`` is
    handed back on the next round as ``ctx.state``. In the 2026-07-28 era this
    becomes an ``input_required`` result with a signed ``requestState``; in the
    handshake era the dispatcher sends the requests to the client itself and
    calls the handler again, so one handler serves both eras.
    """

    requests: dict[str, dict[str, Any]]
    state: dict[str, Any] | None = None


def elicitation_request(message: str, requested_schema: dict[str, Any]) -> dict[str, Any]:
    return {"method": "elicitation/create", "params": {"message": message, "requestedSchema": requested_schema}}


def sampling_request(messages: list[dict[str, Any]], max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {"method": "sampling/createMessage", "params": {"messages": messages, "maxTokens": max_tokens, **extra}}


def list_roots_request() -> dict[str, Any]:
    return {"method": "roots/list", "params": {}}


@dataclass
class SessionState:
    """Handshake-era session data. The transport stores it (Redis/DB) between requests."""

    protocol_version: str
    client_capabilities: dict[str, Any] = field(default_factory=dict)
    client_info: dict[str, Any] = field(default_factory=dict)
    initialized: bool = False
    log_level: str | None = None
    subscriptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol_version": self.protocol_version,
            "client_capabilities": self.client_capabilities,
            "client_info": self.client_info,
            "initialized": self.initialized,
            "log_level": self.log_level,
            "subscriptions": list(self.subscriptions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SessionState":
        return cls(
            protocol_version=data["protocol_version"],
            client_capabilities=dict(data.get("client_capabilities") or {}),
            client_info=dict(data.get("client_info") or {}),
            initialized=bool(data.get("initialized")),
            log_level=data.get("log_level"),
            subscriptions=list(data.get("subscriptions") or []),
        )


@dataclass
class RequestContext:
    request_id: RequestId | None
    method: str
    params: dict[str, Any]
    era: Era
    protocol_version: str
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] | None
    outbound: Outbound
    session: SessionState | None = None
    principal: Any = None  # whatever the transport authenticated (token, user); opaque here
    log_level: str | None = None  # minimum level to emit; None = do not emit (stateless default)
    input_responses: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    round: int = 1
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    request_timeout_s: float | None = 300.0
    headers: Any = None  # HTTP request headers (Mapping) when the transport is HTTP, else None
    session_dirty: bool = False  # set by handlers that changed ``session``; the transport must persist it

    @property
    def progress_token(self) -> Any:
        meta = self.params.get("_meta")
        return meta.get("progressToken") if isinstance(meta, dict) else None

    def client_supports(self, capability: str) -> bool:
        return isinstance(self.client_capabilities.get(capability), dict)

    def require_client_capability(self, *capabilities: str) -> None:
        missing = {name: {} for name in capabilities if not self.client_supports(name)}
        if missing:
            raise MissingClientCapability(missing)

    def send_notification(self, method: str, params: dict[str, Any] | None = None) -> None:
        if self.outbound.is_cancelled():
            return  # nothing more may be sent for a cancelled request
        self.outbound.send_notification(notification_message(method, params))

    def send_request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Handshake era only: ask the client (sampling, elicitation, roots) and wait."""
        if self.era is not Era.HANDSHAKE:
            raise ProtocolError(INTERNAL_ERROR, "Server-to-client requests are not allowed in this protocol era")
        capability = CAPABILITY_FOR_METHOD.get(method)
        if capability:
            self.require_client_capability(capability)
        msg = request_message(f"srv-{uuid.uuid4().hex}", method, params if params is not None else {})
        return self.outbound.send_request(msg, self.request_timeout_s)

    def log(self, level: str, data: Any, logger: str | None = None) -> bool:
        """Send notifications/message if the client asked for this level. Returns True if sent."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        if self.log_level is None or LOG_LEVELS.index(level) < LOG_LEVELS.index(self.log_level):
            return False
        params: dict[str, Any] = {"level": level, "data": data}
        if logger:
            params["logger"] = logger
        self.send_notification("notifications/message", params)
        return True

    def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> bool:
        """Send notifications/progress if the client supplied a progressToken."""
        token = self.progress_token
        if token is None:
            return False
        params: dict[str, Any] = {"progressToken": token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None and self.protocol_version not in BEFORE_2025_06_18:
            params["message"] = message
        self.send_notification("notifications/progress", params)
        return True

    def is_cancelled(self) -> bool:
        return self.outbound.is_cancelled()
