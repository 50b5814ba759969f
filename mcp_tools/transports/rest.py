"""The seed's REST pair: GET /mcp/v1/tools and POST /mcp/v1/tools/invoke."""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from ..kinds.base import get_kind
from ..protocol import ProtocolError
from ..protocol.content import decode_cursor, encode_cursor
from ..selectors import json_body, rest_tool_listing
from ..services.invocation import Caller, tool_invoke
from .authentication import client_ip, insufficient_scope_challenge
from ..protocol.json_text import JsonRejected
from .json_limits import request_json
from .mcp_backend import state_key
from .refusals import connection_note, refusal_mark
from .rest_tasks import queued_response

# HTTP status for each error code of the pipeline; the body keeps the seed's shape.
STATUS_FOR_ERROR = {
    "unknown_tool": 404,
    "tool_disabled": 403,
    "not_permitted": 403,
    "not_confirmed": 403,
    "invalid_arguments": 400,
    "rate_limited": 429,
    "tool_error": 200,
    "invalid_output": 502,
    "timeout": 504,
    "unavailable": 503,
    "internal_error": 500,
}


def _failure(message: str, status: int) -> Response:
    return Response({"success": False, "error": message}, status=status)


# Paging of GET /mcp/v1/tools (optional: without ?limit= or ?cursor= the whole list comes back, as always).
MAX_PAGE_LIMIT = 1000
_CURSOR_SCOPE = "rest:tools"


def _json_response(body: bytes, status: int = 200) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="application/json")


def _note(request) -> None:
    """Connections page: this credential reached the REST pair (the client named by its User-Agent)."""
    connection_note(credential=Caller(token=request.auth).label, client_info=None, transport="rest",
                    protocol_version="", client_ip=client_ip(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""))


class ToolListView(APIView):
    """The token's tools; ``?limit=N`` pages them (``next_cursor``), ``?cursor=`` continues.

    The body is built once per (tools generation, token scope) and process (``rest_tool_listing``):
    any change to a tool or a grant bumps the generation, so the next request lists afresh.
    """

    def get(self, request):
        listing = rest_tool_listing(request.auth)
        _note(request)
        cursor, limit = request.GET.get("cursor"), request.GET.get("limit")
        if cursor is None and limit is None:
            return _json_response(listing.body)
        try:
            start, size = _page_position(cursor, limit)
        except ValueError as exc:
            return _json_response(json_body({"detail": str(exc)}), 400)
        end = start + size
        page = {"tools": list(listing.entries[start:end])}
        if end < len(listing.entries):
            page["next_cursor"] = encode_cursor({"offset": end, "limit": size}, key=state_key(),
                                                scope=_CURSOR_SCOPE)
        return _json_response(json_body(page))


def _page_position(cursor: str | None, limit: str | None) -> tuple[int, int]:
    """(offset, page size) from the query string; ValueError with the reason when it is not usable."""
    start, size = 0, settings.MCP_PAGE_SIZE
    if cursor is not None:
        try:
            position = decode_cursor(cursor, key=state_key(), scope=_CURSOR_SCOPE)
        except (ProtocolError, ValueError):  # ValueError: e.g. non-ASCII text where the signature goes
            raise ValueError("Invalid cursor: pass the next_cursor of a previous page unchanged.") from None
        start, size = position.get("offset"), position.get("limit")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, size)) or start < 0 \
                or not 1 <= size <= MAX_PAGE_LIMIT:
            raise ValueError("Invalid cursor: pass the next_cursor of a previous page unchanged.")
    if limit is not None:
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_PAGE_LIMIT):
            raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE_LIMIT}.")
        size = int(limit)
    return start, size


def rest_result(invocation):
    """The ``result`` the REST pair answers: the kind's REST shape of the tool's result (see HandlerKind)."""
    kind = get_kind(invocation.tool.kind) if invocation.tool is not None else None
    return kind.rest_result(invocation.result) if kind is not None else invocation.result


class ToolInvokeView(APIView):
    parser_classes = []  # the body is read and checked here, with the seed's error shape

    def post(self, request):
        try:
            raw = request._request.body
        except RequestDataTooBig:
            refusal_mark(request, "body_too_large")
            return _failure(f"Request body is larger than {settings.MCP_MAX_BODY_BYTES} bytes.", 413)
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            refusal_mark(request, "wrong_content_type")
            return _failure("Send the body as JSON with 'Content-Type: application/json'.", 415)
        try:
            payload = request_json(raw)
        except JsonRejected as exc:
            if exc.too_large:
                refusal_mark(request, "body_too_large")
                return _failure(f"Request body is larger than {settings.MCP_MAX_BODY_BYTES} bytes.", 413)
            refusal_mark(request, "malformed_message")
            return _failure(f"Malformed JSON body: {exc.reason}", 400)
        if not isinstance(payload, dict):
            return _failure('The body must be a JSON object like {"name": ..., "arguments": {...}}.', 400)
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            return _failure("Missing 'name': give the tool to invoke as a string.", 400)
        arguments = payload.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):  # a malformed request, refused like /mcp refuses it (-32602)
            return _failure("Tool arguments must be a JSON object.", 400)
        caller = Caller(token=request.auth, client_ip=client_ip(request), transport="rest")
        invocation = tool_invoke(name=name, arguments=arguments, caller=caller, request_id=request.request_id)
        _note(request)
        if invocation.outcome == "queued":
            return queued_response(invocation)
        if invocation.ok:
            response = Response({"success": True, "result": rest_result(invocation)})
            if isinstance(invocation.result, dict) and invocation.result.get("truncated") is True:
                response["X-Result-Truncated"] = "true"  # the REST shape may be a bare list: say it here
            return response
        response = _failure(invocation.message, STATUS_FOR_ERROR.get(invocation.error_code, 500))
        if invocation.error_code == "not_permitted" and invocation.tool is not None:
            scope = caller.scope_needed(invocation.tool)
            if scope:
                response["WWW-Authenticate"] = insufficient_scope_challenge(request, scope)
        if invocation.retry_after_s:
            response["Retry-After"] = str(invocation.retry_after_s)
        return response
