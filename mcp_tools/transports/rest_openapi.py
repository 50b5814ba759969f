"""OpenAPI 3 description of the seed's REST pair (drf-spectacular), served at /mcp/v1/openapi.json.

Only the two REST views are described (this module's own urlconf is what the generator walks), and the
schema is served to authenticated callers only, like the endpoints it describes. The annotations below are
applied to the view classes in place; they change nothing about how the views behave.
"""
from django.conf import settings
from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated

from . import rest

_FAILURE = {"type": "object", "required": ["success", "error"],
            "properties": {"success": {"type": "boolean", "enum": [False]}, "error": {"type": "string"}}}
_DETAIL = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
_TOOL = {"type": "object", "required": ["name", "description", "input_schema"],
         "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                        "input_schema": {"type": "object"}}}
_TOOLS = {"type": "object", "required": ["tools"],
          "properties": {"tools": {"type": "array", "items": _TOOL},
                         "next_cursor": {"type": "string", "description": "Only when paging and more tools follow: "
                                         "pass it as ?cursor= for the next page."}}}
_INVOKE_OK = {"type": "object", "required": ["success"],
              "properties": {"success": {"type": "boolean"}, "result": {}, "error": {"type": "string"}}}
_QUEUED = {"type": "object", "required": ["success", "task_id", "status", "status_url"],
           "properties": {"success": {"type": "boolean", "enum": [True]}, "task_id": {"type": "string"},
                          "status": {"type": "string"}, "status_url": {"type": "string"}}}

# Either scheme authenticates (two alternatives, not both at once).
_AUTH = [{"bearerAuth": []}, {"apiKeyAuth": []}]


def _failure(description):
    return OpenApiResponse(response=_FAILURE, description=description)


class InvokeRequest(serializers.Serializer):
    """Documentation only: ToolInvokeView reads and checks the body itself."""

    name = serializers.CharField(min_length=1, help_text="The tool to invoke.")
    arguments = serializers.DictField(required=False, help_text=(
        "The tool's arguments (its input_schema). Refused with 400 before any tool runs: text holding U+0000 or "
        "an unpaired surrogate, integers outside the signed 64-bit range, non-finite numbers, duplicate member "
        "names, nesting deeper than MCP_MAX_JSON_DEPTH."))


class RestPairSchema(AutoSchema):
    """The schema class for the REST pair's views (the project's DRF default stays unset)."""


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How ApiTokenAuthentication looks in the schema: a bearer token, or the same secret in the API-key header."""

    target_class = "mcp_tools.transports.authentication.ApiTokenAuthentication"
    name = ["bearerAuth", "apiKeyAuth"]

    def get_security_definition(self, auto_schema):
        return [{"type": "http", "scheme": "bearer"},
                {"type": "apiKey", "in": "header", "name": settings.MCP_API_KEY_HEADER}]


# Set the base schema class, then extend_schema (on the classes: each view has one method) subclasses it.
rest.ToolListView.schema = RestPairSchema()
rest.ToolInvokeView.schema = RestPairSchema()
extend_schema(
    summary="Tools the token may call", auth=_AUTH,
    parameters=[
        OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": rest.MAX_PAGE_LIMIT}, description=f"Page size (1-{rest.MAX_PAGE_LIMIT}); without limit and cursor "
                         "the whole list is returned."),
        OpenApiParameter("cursor", str, description="The next_cursor of the previous page."),
    ],
    responses={200: OpenApiResponse(response=_TOOLS), 400: OpenApiResponse(response=_DETAIL),
               401: OpenApiResponse(response=_DETAIL),
               403: OpenApiResponse(response=_DETAIL), 429: OpenApiResponse(response=_DETAIL)},
)(rest.ToolListView)
extend_schema(
    summary="Invoke one tool", auth=_AUTH,
    request={"application/json": InvokeRequest},
    responses={200: OpenApiResponse(response=_INVOKE_OK, description="Result, or the tool's own error"),
               202: OpenApiResponse(response=_QUEUED, description="Accepted; follow status_url"),
               400: _failure("Malformed body or invalid arguments"),
               401: OpenApiResponse(response=_DETAIL), 403: OpenApiResponse(response=_INVOKE_OK),
               404: _failure("Unknown tool"), 413: _failure("Body too large"),
               415: _failure("Not JSON"), 429: OpenApiResponse(response=_INVOKE_OK),
               502: _failure("Tool output failed its schema"), 503: _failure("Unavailable"),
               504: _failure("Timed out")},
)(rest.ToolInvokeView)

# The generator walks only these routes (identical to the real ones in mcp_tools/urls.py).
urlpatterns = [
    path("mcp/v1/tools", rest.ToolListView.as_view()),
    path("mcp/v1/tools/invoke", rest.ToolInvokeView.as_view()),
]

schema_view = SpectacularJSONAPIView.as_view(
    urlconf=__name__, permission_classes=[IsAuthenticated],
    custom_settings={"TITLE": "MCP tool server REST API", "VERSION": "1",
                     "DESCRIPTION": "The seed's REST pair: list the tools a token may call, invoke one."},
)
