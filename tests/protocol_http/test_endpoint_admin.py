"""The admin pages for MCP endpoints and sessions."""
from django.core.exceptions import ValidationError
import pytest

from mcp_tools.models import McpEndpoint, Tool


@pytest.fixture
def tool(db):
    return Tool.objects.create(name="echo_it", description="Echo", kind="echo", input_schema={"type": "object"})


def test_an_admin_creates_an_endpoint(admin_client, tool):
    response = admin_client.post("/admin/mcp_tools/mcpendpoint/add/", {
        "slug": "support", "name": "Support desk", "instructions": "Be nice.", "enabled": "on",
        "requires_auth": "on", "tools": [tool.pk]})
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = McpEndpoint.objects.get(slug="support")
    assert list(endpoint.tools.all()) == [tool] and endpoint.requires_auth
    assert admin_client.get("/admin/mcp_tools/mcpsession/").status_code == 200


@pytest.mark.parametrize("slug", ["v1", "sse", "messages", "conformance", "Has Space", ""])
def test_reserved_or_malformed_slugs_are_refused(db, slug):
    with pytest.raises(ValidationError):
        McpEndpoint(slug=slug, name="x").full_clean()


def test_a_public_endpoint_must_list_its_tools(db):
    with pytest.raises(ValidationError, match="one by one"):
        McpEndpoint(slug="open", name="Open", requires_auth=False, all_tools=True).full_clean()
