"""Guards in front of every view: endpoint IP allow-list, CORS, security headers on pages."""
from django.test import Client, override_settings
import pytest

pytestmark = pytest.mark.django_db


@override_settings(MCP_ALLOWED_IPS=["10.0.0.0/8"])
def test_the_endpoint_ip_allow_list_refuses_other_addresses():
    client = Client()
    refused = client.get("/mcp/v1/tools", REMOTE_ADDR="192.0.2.10")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This address may not use the MCP endpoint."}
    assert client.get("/mcp/v1/tools", REMOTE_ADDR="10.1.2.3").status_code == 401  # on to authentication
    assert client.get("/health", REMOTE_ADDR="192.0.2.10").status_code == 200


def test_without_an_allow_list_every_address_reaches_authentication():
    assert Client().get("/mcp/v1/tools", REMOTE_ADDR="192.0.2.10").status_code == 401


@override_settings(CORS_ALLOWED_ORIGINS=["https://console.example.com"])
def test_cors_only_for_configured_origins():
    client = Client()
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
                 "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization,content-type"}
    allowed = client.options("/mcp/v1/tools/invoke", HTTP_ORIGIN="https://console.example.com", **preflight)
    assert allowed["Access-Control-Allow-Origin"] == "https://console.example.com"
    assert "authorization" in allowed["Access-Control-Allow-Headers"]
    other = client.options("/mcp/v1/tools/invoke", HTTP_ORIGIN="https://evil.example", **preflight)
    assert "Access-Control-Allow-Origin" not in other


def test_admin_pages_carry_a_strict_content_security_policy():
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
