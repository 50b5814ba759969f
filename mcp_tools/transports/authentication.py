"""DRF authentication for agents: ``Authorization: Bearer <token>`` or an API-key header."""
from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from ..exceptions import AuthenticationFailed, NotPermitted
from ..services.tokens import TOKEN_PREFIX, token_authenticate, token_prefix_of
from .refusals import refusal_mark


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def credential_from(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""  # present but unusable
    key_header = "HTTP_" + settings.MCP_API_KEY_HEADER.upper().replace("-", "_")
    value = request.META.get(key_header)
    if value is not None:
        return value.strip()
    return None


class ApiTokenAuthentication(BaseAuthentication):
    """Agents' credentials: an API token (bearer or API-key header) or an OAuth 2.1 access token.

    Returns ``(stand-in user, credential)``; agents are not Django users, the credential
    is the principal that ``Caller(token=request.auth)`` understands.
    """

    www_authenticate_realm = "mcp"

    def authenticate(self, request):
        raw = credential_from(request)
        if raw is None:
            return None
        if not raw:
            refusal_mark(request, "credential_unusable")
            raise exceptions.AuthenticationFailed(
                f"Use 'Authorization: Bearer <token>' or the '{settings.MCP_API_KEY_HEADER}' header.")
        if not raw.startswith(TOKEN_PREFIX) and request.META.get("HTTP_AUTHORIZATION"):
            return self._authenticate_oauth(request)
        try:
            token = token_authenticate(raw=raw, client_ip=client_ip(request))
        except AuthenticationFailed as exc:
            refusal_mark(request, exc.reason, token_prefix=token_prefix_of(raw))
            raise exceptions.AuthenticationFailed(str(exc)) from None
        except NotPermitted as exc:  # the token's allowed IPs
            refusal_mark(request, "token_ip_not_allowed", token_prefix=token_prefix_of(raw))
            raise exceptions.PermissionDenied(exc.message) from None
        return (_TokenUser(token), token)

    def _authenticate_oauth(self, request):
        from ..oauth import OAuthTokenInvalid, oauth_access_token_verify

        try:
            token = oauth_access_token_verify(getattr(request, "_request", request))
        except OAuthTokenInvalid as exc:
            refusal_mark(request, exc.reason)
            request._oauth_error = "invalid_token"
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return (_TokenUser(token), token)

    def authenticate_header(self, request):
        from ..oauth import resource_metadata_url

        challenge = f'Bearer realm="{self.www_authenticate_realm}"'
        if getattr(request, "_oauth_error", None):
            challenge += f', error="{request._oauth_error}"'
        return challenge + f', resource_metadata="{resource_metadata_url(request)}"'


def insufficient_scope_challenge(request, scope: str) -> str:
    """RFC 6750 challenge telling an OAuth client which scope to ask for (sent with a 403)."""
    from ..oauth import resource_metadata_url

    return (f'Bearer realm="mcp", error="insufficient_scope", scope="{scope}", '
            f'resource_metadata="{resource_metadata_url(request)}"')


class _TokenUser:
    """Stand-in user so DRF's IsAuthenticated passes for a valid credential."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, token):
        self.token = token

    def __str__(self):
        return f"token:{getattr(self.token, 'prefix', 'oauth')}"
