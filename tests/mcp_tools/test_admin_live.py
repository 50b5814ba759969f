"""Admin changes seen by agents over real HTTP (needs committed data, hence transactional)."""
from django.contrib.auth import get_user_model
from django.urls import reverse

from mcp_tools.models import Tool


def listed_names(api, token):
    return [t["name"] for t in api.get("/mcp/v1/tools", headers={"X-API-Key": token}).json()["tools"]]


def test_unticking_enabled_in_the_list_view_hides_the_tool_from_agents(client, api, demo, demo_token):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    tools = list(Tool.objects.order_by("name"))
    data = {"form-TOTAL_FORMS": str(len(tools)), "form-INITIAL_FORMS": str(len(tools)), "_save": "Save"}
    for index, tool in enumerate(tools):
        data[f"form-{index}-id"] = str(tool.pk)
        if tool.name != "create_ticket":
            data[f"form-{index}-enabled"] = "on"
    assert "create_ticket" in listed_names(api, demo_token)
    response = client.post(reverse("admin:mcp_tools_tool_changelist"), data)
    assert response.status_code == 302
    assert "create_ticket" not in listed_names(api, demo_token)
    assert "echo" in listed_names(api, demo_token)
