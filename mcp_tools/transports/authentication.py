"""DRF authentication for agents: ``Authorization: Bearer <token>`` or an API-key header."""
from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from ..exceptions import AuthenticationFailed, NotPermitted
from ..services.tokens import token_authenticate


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
    """Returns ``(None, ApiToken)``: agents are not Django users; the token is the principal."""

    www_authenticate_realm = "mcp"

    def authenticate(self, request):
        raw = credential_from(request)
        if raw is None:
            return None
        if not raw:
            raise exceptions.AuthenticationFailed(
                f"Use 'Authorization: Bearer <token>' or the '{settings.MCP_API_KEY_HEADER}' header.")
        try:
            token = token_authenticate(raw=raw, client_ip=client_ip(request))
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        except NotPermitted as exc:
            raise exceptions.PermissionDenied(exc.message) from None
        return (_TokenUser(token), token)

    def authenticate_header(self, request):
        return f'Bearer realm="{self.www_authenticate_realm}"'


class _TokenUser:
    """Stand-in user so DRF's IsAuthenticated passes for a valid token."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, token):
        self.token = token

    def __str__(self):
        return f"token:{self.token.prefix}"
