from django.contrib import admin
from django.urls import include, path
from oauth2_provider import urls as oauth_urls

oauth_authorization_server = [
    p for p in oauth_urls.base_urlpatterns if p.name in {"authorize", "token", "revoke-token", "introspect"}]

urlpatterns = [
    path("admin/dashboard/", include("mcp_tools.dashboard.urls")),
    path("admin/", admin.site.urls),
    # OAuth 2.1: authorization server (authorize, token, revoke, introspect) and the
    # RFC 8414 / RFC 9728 metadata documents at the server root.
    path("", include((oauth_urls.metadata_urlpatterns + [path("o/", include(oauth_authorization_server))],
                      "oauth2_provider"))),
    path("demo/", include("demo_company.urls")),
    path("", include("mcp_tools.urls")),
]
