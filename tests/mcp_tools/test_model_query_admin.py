"""Building a model query tool in the Tool admin: the config is checked and the schemas are generated and shown."""
import json

from django.contrib.auth import get_user_model
from django.urls import reverse
import pytest

from mcp_tools.models import Tool
from mcp_tools.services.model_query_schemas import model_query_schemas

pytestmark = pytest.mark.django_db

CONFIG = {"model": "demo_company.Customer", "fields": ["id", "name", "email"], "filters": {"email": ["iexact"]},
          "required_filters": ["email"], "max_page_size": 5}


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only"))
    return client


def form_data(config, **overrides):
    data = {
        "name": "customer_by_email", "title": "", "description": "A customer by e-mail", "enabled": "on",
        "input_schema": "", "output_schema": "", "annotations": "{}", "kind": "model_query",
        "config": json.dumps(config), "execution": "sync", "timeout_s": "10", "rate_limit": "",
        "sensitive_fields": "[]", "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_an_admin_builds_one_from_the_config_alone_and_sees_the_generated_schemas(admin_client):
    response = admin_client.post(reverse("admin:mcp_tools_tool_add"), form_data(CONFIG))
    assert response.status_code == 302, response.content.decode()[:3000]
    tool = Tool.objects.get(name="customer_by_email")
    assert (tool.input_schema, tool.output_schema) == model_query_schemas(CONFIG)
    assert tool.annotations["readOnlyHint"] is True and tool.annotations["destructiveHint"] is False
    page = admin_client.get(reverse("admin:mcp_tools_tool_change", args=[tool.pk])).content.decode()
    assert "Input schema (generated from the config)" in page and "&quot;iexact&quot;" in page
    assert 'name="input_schema"' not in page  # shown, not editable: it follows the config


def test_changing_the_ticks_regenerates_the_schemas_and_keeps_a_revision(admin_client):
    admin_client.post(reverse("admin:mcp_tools_tool_add"), form_data(CONFIG))
    tool = Tool.objects.get(name="customer_by_email")
    changed = {**CONFIG, "fields": ["id", "email", "state"], "order_by": ["email"]}
    response = admin_client.post(reverse("admin:mcp_tools_tool_change", args=[tool.pk]),
                                 form_data(changed, input_schema=json.dumps({"type": "object"})))
    assert response.status_code == 302, response.content.decode()[:3000]
    tool.refresh_from_db()
    assert (tool.input_schema, tool.output_schema) == model_query_schemas(changed)
    assert "state" in tool.output_schema["properties"]["results"]["items"]["properties"]
    assert tool.version == 2 and tool.revisions.count() == 2


@pytest.mark.parametrize("config,message", [
    ({"model": "mcp_tools.ApiToken", "fields": ["prefix"]}, "can never be exposed"),
    ({"model": "oauth2_provider.AccessToken", "fields": ["token"]}, "can never be exposed"),
    ({"model": "auth.User", "fields": ["password"]}, "&#x27;password&#x27; is not an exposable field"),
    ({"model": "demo_company.Customer", "fields": ["email"], "filters": {"email": ["regex"]}},
     "is not one of"),
])
def test_a_config_that_reaches_for_secrets_or_unknown_lookups_is_refused(admin_client, config, message):
    response = admin_client.post(reverse("admin:mcp_tools_tool_add"), form_data(config))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Tool.objects.filter(name="customer_by_email").exists()


def test_other_kinds_still_need_a_hand_written_input_schema(admin_client):
    response = admin_client.post(reverse("admin:mcp_tools_tool_add"), form_data({}, kind="echo"))
    assert response.status_code == 200 and "Give the input schema" in response.content.decode()
