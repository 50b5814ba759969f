"""Transport-level guards that apply before any view runs."""
import ipaddress

from django.conf import settings
from django.http import JsonResponse

# Paths agents use; the admin and health checks are not behind the endpoint allow-list.
AGENT_PATH_PREFIXES = ("/mcp", "/o/")


class EndpointIpAllowListMiddleware:
    """Refuse agent traffic from addresses outside MCP_ALLOWED_IPS (the seed's ALLOWED_IPS), when set."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.networks = [ipaddress.ip_network(cidr, strict=False) for cidr in settings.MCP_ALLOWED_IPS]

    def __call__(self, request):
        if self.networks and request.path.startswith(AGENT_PATH_PREFIXES):
            try:
                address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
            except ValueError:
                address = None
            if address is None or not any(address in network for network in self.networks):
                request.connection_refusal = ("ip_not_allowed", "", None)  # see transports/refusals.py
                return JsonResponse({"detail": "This address may not use the MCP endpoint."}, status=403)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy and related headers on every page we render."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
           "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", self.CSP)
            response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response
