from django.urls import path

from . import views
from .transports import rest

urlpatterns = [
    path("health", views.health, name="health"),
    path("mcp/v1/tools", rest.ToolListView.as_view(), name="rest-tools"),
    path("mcp/v1/tools/invoke", rest.ToolInvokeView.as_view(), name="rest-invoke"),
]
