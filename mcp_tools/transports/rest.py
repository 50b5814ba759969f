"""The seed's REST pair: GET /mcp/v1/tools and POST /mcp/v1/tools/invoke."""
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response
from rest_framework.views import APIView

from ..selectors import tools_for_token
from ..services.invocation import Caller, tool_invoke
from .authentication import client_ip, insufficient_scope_challenge
from .json_limits import json_depth, reject_constant
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


class ToolListView(APIView):
    def get(self, request):
        tools = tools_for_token(request.auth)
        return Response({"tools": [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools
        ]})


class ToolInvokeView(APIView):
    parser_classes = []  # the body is read and checked here, with the seed's error shape

    def post(self, request):
        try:
            raw = request._request.body
        except RequestDataTooBig:
            return _failure(f"Request body is larger than {settings.MCP_MAX_BODY_BYTES} bytes.", 413)
        content_type = request.content_type.split(";")[0].strip().lower()
        if content_type != "application/json":
            return _failure("Send the body as JSON with 'Content-Type: application/json'.", 415)
        if json_depth(raw) > settings.MCP_MAX_JSON_DEPTH:
            return _failure(f"The JSON body is nested deeper than {settings.MCP_MAX_JSON_DEPTH} levels.", 400)
        try:
            payload = json.loads(raw, parse_constant=reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return _failure(f"Malformed JSON body: {exc}", 400)
        if not isinstance(payload, dict):
            return _failure('The body must be a JSON object like {"name": ..., "arguments": {...}}.', 400)
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            return _failure("Missing 'name': give the tool to invoke as a string.", 400)
        arguments = payload.get("arguments", {})
        caller = Caller(token=request.auth, client_ip=client_ip(request), transport="rest")
        invocation = tool_invoke(name=name, arguments=arguments, caller=caller, request_id=request.request_id)
        if invocation.outcome == "queued":
            return queued_response(invocation)
        if invocation.ok:
            return Response({"success": True, "result": invocation.result})
        response = _failure(invocation.message, STATUS_FOR_ERROR.get(invocation.error_code, 500))
        if invocation.error_code == "not_permitted" and invocation.tool is not None:
            scope = caller.scope_needed(invocation.tool)
            if scope:
                response["WWW-Authenticate"] = insufficient_scope_challenge(request, scope)
        if invocation.retry_after_s:
            response["Retry-After"] = str(invocation.retry_after_s)
        return response
