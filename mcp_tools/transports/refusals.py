"""Refused requests: the transports name the reason, one middleware records it.

Where a request is refused (authentication, Origin, Accept, Content-Type, size, session,
protocol version, headers), the code that refuses it calls ``refusal_mark(request, reason)``.
``ConnectionRefusalMiddleware`` then, once the view has answered, hands the marked request to
``services.connections.connection_refusal_record`` with what identifies the client: transport,
path, address, token prefix (never the secret) and the client's name and version. It also
refuses a Host outside ALLOWED_HOSTS on agent paths itself, with a message that says so.
"""
from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import JsonResponse

from ..protocol.json_text import JsonRejected
from .json_limits import request_json
from ..protocol.jsonrpc import HEADER_MISMATCH, INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION, error_response
from ..protocol.versions import META_CLIENT_INFO
from ..security_middleware import AGENT_PATH_PREFIXES
from ..services.connections import connection_refusal_record, connection_seen
from ..services.tokens import token_prefix_of

# Bodies at most this large are read for the client's name when a request was refused before its body was.
_CLIENT_INFO_BODY_LIMIT = 16 * 1024


def refusal_mark(request, reason: str, *, token_prefix: str = "", client_info: Any = None) -> None:
    """Tag ``request`` (Django or DRF) as refused for ``reason`` (a key of connections.REASONS); first mark wins."""
    django_request = getattr(request, "_request", request)
    if getattr(django_request, "connection_refusal", None) is None:
        django_request.connection_refusal = (reason, token_prefix, client_info)


def transport_of(path: str) -> str:
    if path.startswith("/mcp/v1/"):
        return "rest"
    if path.endswith("/sse") or "/messages" in path:
        return "http+sse"
    if path.startswith("/mcp"):
        return "streamable-http"
    return "oauth" if path.startswith("/o/") else "http"


def outcome_refusal(response: dict[str, Any] | None, *, has_session: bool) -> str | None:
    """The refusal reason of a dispatcher error that happened before any handler ran, if it is one."""
    error = (response or {}).get("error")
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), str(error.get("message", ""))
    if code == HEADER_MISMATCH:
        return "header_mismatch"
    if code == UNSUPPORTED_PROTOCOL_VERSION or (code == INVALID_REQUEST and "MCP-Protocol-Version" in message):
        return "unsupported_protocol_version"
    if code == INVALID_REQUEST and not has_session and "no session" in message:
        return "session_required"
    return None


def client_of(info: Any) -> tuple[str, str]:
    """(name, version) of an MCP ``Implementation`` object (clientInfo), or ('', '')."""
    if not isinstance(info, dict):
        return "", ""
    return str(info.get("name") or "")[:100], str(info.get("version") or "")[:40]


def message_client_info(message_params: Any) -> Any:
    """clientInfo of an initialize request, or the 2026-07-28 ``_meta`` clientInfo of any request."""
    if not isinstance(message_params, dict):
        return None
    if isinstance(message_params.get("clientInfo"), dict):
        return message_params["clientInfo"]
    meta = message_params.get("_meta")
    return meta.get(META_CLIENT_INFO) if isinstance(meta, dict) else None


def connection_note(*, credential: str, client_info: Any, transport: str, protocol_version: str,
                    client_ip: str | None, user_agent: str = "") -> None:
    """A successful exchange: remember which client it was (throttled in connection_seen)."""
    name, version = client_of(client_info)
    if not name:
        name, version = _user_agent_client(user_agent)
    connection_seen(credential=credential, client_name=name, client_version=version, transport=transport,
                    protocol_version=protocol_version, client_ip=client_ip)


def _user_agent_client(user_agent: str) -> tuple[str, str]:
    product = (user_agent or "").split(" ")[0]
    name, _, version = product.partition("/")
    return name[:100], version[:40]


def _body_client_info(request) -> Any:
    """clientInfo from a small JSON body (already read, or small enough to read now); never stored."""
    body = getattr(request, "_body", None)
    if body is None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= _CLIENT_INFO_BODY_LIMIT:
            return None
        try:
            body = request.body
        except Exception:  # a stream already consumed, a client gone: the name is optional
            return None
    if not body or len(body) > _CLIENT_INFO_BODY_LIMIT:
        return None
    try:
        message = request_json(body)  # the one parser and limits of every door; what it refuses names nobody
    except JsonRejected:
        return None
    return message_client_info(message.get("params")) if isinstance(message, dict) else None


def _credential_prefix(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    raw = header.partition(" ")[2] if header else request.META.get(
        "HTTP_" + settings.MCP_API_KEY_HEADER.upper().replace("-", "_"), "")
    return token_prefix_of(raw)


class ConnectionRefusalMiddleware:
    """Record requests a transport marked as refused (after the view answered); refuse unknown Hosts."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(AGENT_PATH_PREFIXES):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost:
            refusal_mark(request, "host_refused")
            response = JsonResponse(error_response(None, INVALID_REQUEST, (
                "Bad Request: this server does not answer to the host name in the URL; "
                "use its configured public host name.")), status=400)
        else:
            response = self.get_response(request)
        marked = getattr(request, "connection_refusal", None)
        if marked is not None:
            self._record(request, response, *marked)
        return response

    def _record(self, request, response, reason: str, token_prefix: str, client_info: Any) -> None:
        name, version = client_of(client_info if client_info is not None else _body_client_info(request))
        if not name:
            name, version = _user_agent_client(request.META.get("HTTP_USER_AGENT", ""))
        connection_refusal_record(
            reason=reason, transport=transport_of(request.path), path=request.path, method=request.method,
            client_ip=request.META.get("REMOTE_ADDR") or None,
            token_prefix=token_prefix or _credential_prefix(request), client_name=name, client_version=version,
            http_status=response.status_code, detail=_answer_message(response))


def _answer_message(response) -> str:
    """The message a refused client was sent (JSON-RPC error message, REST 'error' or DRF 'detail')."""
    if response.streaming or not response.get("Content-Type", "").startswith("application/json") \
            or len(response.content) > 4000:
        return ""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or payload.get("detail") or "")
