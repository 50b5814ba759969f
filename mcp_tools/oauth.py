"""OAuth 2.1 resource server on top of django-oauth-toolkit (the bundled authorization server).

Scopes map to tool permissions: ``mcp:tools`` grants every tool, ``tool:<name>``
one tool. Access tokens must be audience-bound (RFC 8707 ``resource``) to this
server's MCP resource; tokens for another resource, or bound to none, are refused.
"""
from django.conf import settings
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.scopes import BaseScopes

from .services.principals import ALL_TOOLS_SCOPE, tool_scope

# Path of the protected resource (the MCP endpoint and the REST pair below it).
RESOURCE_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"


class ToolScopes(BaseScopes):
    """One scope per tool, plus one for all tools; read from the database at each use."""

    def get_all_scopes(self):
        from .models import Tool

        scopes = {ALL_TOOLS_SCOPE: "Call every tool this server offers you"}
        for name in Tool.objects.filter(enabled=True).order_by("name").values_list("name", flat=True):
            scopes[tool_scope(name)] = f"Call the tool {name}"
        return scopes

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        return list(self.get_all_scopes())

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return list(settings.MCP_OAUTH_DEFAULT_SCOPES)


def resource_uri(request) -> str:
    """The canonical URI of this protected resource, as clients must name it in ``resource``."""
    if settings.MCP_PUBLIC_URL:
        return settings.MCP_PUBLIC_URL.rstrip("/") + RESOURCE_PATH
    return request.build_absolute_uri(RESOURCE_PATH)


def resource_metadata_url(request) -> str:
    base = settings.MCP_PUBLIC_URL.rstrip("/") if settings.MCP_PUBLIC_URL else request.build_absolute_uri("/")[:-1]
    return base + METADATA_PATH + RESOURCE_PATH


_DOT_AUDIENCE_REFUSAL = "The access token is not valid for this resource."


class OAuthTokenInvalid(Exception):
    """``reason``: 'oauth_audience' for a token bound to another resource (or none), else 'oauth_token_invalid'."""

    def __init__(self, message: str, reason: str = "oauth_token_invalid"):
        super().__init__(message)
        self.reason = reason


def oauth_access_token_verify(request):
    """Return the valid, audience-bound AccessToken carried by ``request`` or raise OAuthTokenInvalid."""
    valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
    if not valid:
        error = getattr(oauth_request, "oauth2_error", None) or {}
        description = str(error.get("error_description") or "")
        # django-oauth-toolkit checks the RFC 8707 audience itself and says so only in these words.
        reason = "oauth_audience" if description == _DOT_AUDIENCE_REFUSAL else "oauth_token_invalid"
        raise OAuthTokenInvalid(description or "Invalid or expired access token.", reason=reason)
    token = oauth_request.access_token
    if settings.MCP_OAUTH_REQUIRE_AUDIENCE and not token.resource:
        raise OAuthTokenInvalid(
            f"This access token is not bound to this server: request it with resource={resource_uri(request)}.",
            reason="oauth_audience")
    if token.resource and not any(resource_uri(request).startswith(r.rstrip("/")) for r in token.resource):
        raise OAuthTokenInvalid(_DOT_AUDIENCE_REFUSAL, reason="oauth_audience")
    return token
