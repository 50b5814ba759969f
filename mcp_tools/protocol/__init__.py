"""Pure-Python MCP protocol layer: JSON-RPC, versions/eras, content, dispatcher. No Django here."""
from .backend import Backend, PromptNotFound, ResourceNotFound, ToolNotFound
from .context import (
    InputRequired,
    MissingClientCapability,
    NullOutbound,
    Outbound,
    RequestContext,
    SessionState,
    elicitation_request,
    list_roots_request,
    sampling_request,
)
from .dispatcher import Dispatcher, ListenSubscription, Outcome, http_status_for_error
from .headers import check_param_headers, check_request_headers
from .jsonrpc import ProtocolError, parse_message
from .server import build_dispatcher
from .versions import SUPPORTED_VERSIONS, Era, detect_era

__all__ = [
    "Backend", "Dispatcher", "Era", "InputRequired", "ListenSubscription", "MissingClientCapability",
    "NullOutbound", "Outbound", "Outcome", "PromptNotFound", "ProtocolError", "RequestContext",
    "ResourceNotFound", "SUPPORTED_VERSIONS", "SessionState", "ToolNotFound", "build_dispatcher",
    "check_param_headers", "check_request_headers", "detect_era", "elicitation_request",
    "http_status_for_error", "list_roots_request", "parse_message", "sampling_request",
]
