from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("demo/", include("demo_company.urls")),
    path("", include("mcp_tools.urls")),
]
