from django.urls import path

from . import views
from .transports import legacy_sse, rest, rest_openapi, rest_tasks, streamable_http

urlpatterns = [
    path("health", views.health, name="health"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("metrics", views.metrics, name="metrics"),
    path("mcp/v1/tools", rest.ToolListView.as_view(), name="rest-tools"),
    path("mcp/v1/tools/invoke", rest.ToolInvokeView.as_view(), name="rest-invoke"),
    path("mcp/v1/openapi.json", rest_openapi.schema_view, name="rest-openapi"),
    path("mcp/v1/tasks/<str:task_id>", rest_tasks.TaskStatusView.as_view(), name="rest-task"),
    # MCP 2024-11-05 HTTP+SSE transport (Mistral's MCPClientSSE): GET the stream, POST the messages.
    path("mcp/sse", legacy_sse.SseStreamView.as_view(), name="mcp-sse-default"),
    path("mcp/messages", legacy_sse.SseMessageView.as_view(), name="mcp-sse-messages-default"),
    path("mcp/<slug:slug>/sse", legacy_sse.SseStreamView.as_view(), name="mcp-sse"),
    path("mcp/<slug:slug>/messages", legacy_sse.SseMessageView.as_view(), name="mcp-sse-messages"),
    # MCP Streamable HTTP, both protocol eras. Keep these last: /mcp/<slug> must not shadow the routes above.
    path("mcp", streamable_http.StreamableHttpView.as_view(), name="mcp"),
    path("mcp/<slug:slug>", streamable_http.StreamableHttpView.as_view(), name="mcp-endpoint"),
]
