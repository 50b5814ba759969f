"""Model query tools: the schemas generated from a configuration, and what a configuration may never expose."""
from django.db import models
import pytest

from demo_company.models import BillingAccount, Customer, Order, Product
from demo_company.seed import demo_tools
from mcp_tools.services.model_query_policy import field_category, model_query_resolve
from mcp_tools.services.model_query_schemas import model_query_schemas, value_schema
from mcp_tools.services.schemas import input_schema_problems, instance_problems, schema_problems
from tickets.models import Ticket

DEMO_MODELS = (Customer, Product, Order, BillingAccount)
# The JSON type of each field class the demo models use, as a result carries it.
EXPECTED = {
    models.BigAutoField: {"type": "integer"},
    models.CharField: {"type": "string"},
    models.EmailField: {"type": "string"},
    models.DateTimeField: {"type": "string", "format": "date-time"},
    models.PositiveIntegerField: {"type": "integer"},
    models.ForeignKey: {"type": "integer"},
    models.OneToOneField: {"type": "integer"},
}


def demo_fields():
    return [pytest.param(model, field, id=f"{model.__name__}.{field.attname}")
            for model in DEMO_MODELS for field in model._meta.concrete_fields]


def test_the_table_covers_every_field_class_the_demo_models_use():
    assert {type(field) for model in DEMO_MODELS for field in model._meta.concrete_fields} == set(EXPECTED)


@pytest.mark.parametrize("model,field", demo_fields())
def test_each_demo_field_gets_the_json_type_of_its_values(model, field):
    schema = value_schema(field)
    expected = EXPECTED[type(field)]
    assert {k: schema[k] for k in expected} == expected
    if isinstance(field, models.CharField):
        assert schema["maxLength"] == field.max_length
    assert schema_problems(schema) == []


def test_choices_become_an_enum_and_null_is_allowed_only_for_nullable_fields():
    status = value_schema(Ticket._meta.get_field("status"))
    assert status["enum"] == [value for value, _ in Ticket.Status.choices]
    assert instance_problems(status, "open") == [] and instance_problems(status, "bogus")
    nullable = next(f for f in Ticket._meta.concrete_fields if f.null and field_category(f) is not None)
    assert "null" in value_schema(nullable)["type"] or None in value_schema(nullable).get("enum", [])
    assert instance_problems(value_schema(Customer._meta.get_field("email")), None)


def test_decimals_are_strings_and_other_types_map_as_documented():
    assert value_schema(models.DecimalField(max_digits=8, decimal_places=2)) == {
        "type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    assert value_schema(models.DateField())["format"] == "date"
    assert value_schema(models.BooleanField())["type"] == "boolean"
    assert value_schema(models.UUIDField())["format"] == "uuid"
    assert value_schema(models.FileField())["type"] == "string"
    assert value_schema(models.FloatField(null=True))["type"] == ["number", "null"]


def seed_configs():
    return {spec["name"]: spec["config"] for spec in demo_tools("http://127.0.0.1") if spec["kind"] == "model_query"}


def test_the_seed_tools_generate_valid_schemas_with_their_relation_nested():
    configs = seed_configs()
    assert set(configs) == {"find_customers", "customers_with_last_order"}
    for config in configs.values():
        input_schema, output_schema = model_query_schemas(config)
        assert input_schema_problems(input_schema) == [] and schema_problems(output_schema) == []
    input_schema, output_schema = model_query_schemas(configs["customers_with_last_order"])
    row = output_schema["properties"]["results"]["items"]
    last_order = row["properties"]["last_order"]["anyOf"][0]
    assert set(last_order["properties"]) == {"id", "product_id", "quantity", "total_cents", "status", "created_at"}
    assert input_schema["required"] == ["filter"] and input_schema["properties"]["filter"]["required"] == ["state"]
    assert "email" not in row["properties"]["last_order"]["anyOf"][0]["properties"]
    # The agent's view: only ticked names are accepted, and the refusal names what is allowed.
    problems = instance_problems(input_schema, {"filter": {"state": {"exact": "CA"}, "email": {"exact": "x"}}})
    assert any("'email' is not one of ['state']" in p for p in problems)
    assert instance_problems(input_schema, {"filter": {"state": {"in": ["CA", "NY"]}}, "page_size": 5}) == []


def test_changing_the_ticks_changes_the_schemas():
    config = dict(seed_configs()["find_customers"])
    before = model_query_schemas(config)
    config["fields"] = ["id", "email"]
    config["filters"] = {"email": ["exact"]}
    input_schema, output_schema = model_query_schemas(config)
    assert (input_schema, output_schema) != before
    assert set(output_schema["properties"]["results"]["items"]["properties"]) == {"id", "email"}
    assert set(input_schema["properties"]["filter"]["properties"]) == {"email"}


@pytest.mark.parametrize("label", ["mcp_tools.ApiToken", "mcp_tools.Tool", "mcp_tools.ToolTask",
                                   "mcp_tools.McpSession", "sessions.Session", "oauth2_provider.Application",
                                   "oauth2_provider.Grant", "oauth2_provider.AccessToken",
                                   "oauth2_provider.RefreshToken", "admin.LogEntry"])
def test_the_products_secrets_are_never_offered(label):
    policy, problems = model_query_resolve({"model": label, "fields": ["id"], "allow_audit_model": True})
    assert policy is None and problems == [f"Model '{label.lower()}' holds credentials or server state and can "
                                           "never be exposed."]


def test_audit_rows_need_an_explicit_choice_and_passwords_are_never_offered():
    _, problems = model_query_resolve({"model": "mcp_tools.AuditEvent", "fields": ["id"]})
    assert "allow_audit_model" in problems[0]
    _, problems = model_query_resolve({"model": "mcp_tools.AuditEvent", "fields": ["id"], "allow_audit_model": True})
    assert not any("audit rows" in p for p in problems)
    _, problems = model_query_resolve({"model": "auth.User", "fields": ["username", "password"]})
    assert any("'password' is not an exposable field" in p and "username" in p for p in problems)


def test_relations_to_secret_models_are_refused_too():
    _, problems = model_query_resolve({"model": "auth.User", "fields": ["id"],
                                       "relations": {"api_tokens": {"fields": ["prefix"]}}})
    assert any("mcp_tools.apitoken" in p and "never be exposed" in p for p in problems)


@pytest.mark.parametrize("config,expected", [
    ({"filters": {"id": ["icontains"]}}, "filters.id: lookup(s) icontains do not apply"),
    ({"filters": {"state": ["isnull"]}}, "filters.state: lookup(s) isnull do not apply"),
    ({"filters": {"customer__email": ["exact"]}}, "filters: 'customer__email' is not an exposable field"),
    ({"order_by": ["nope"]}, "order_by: 'nope' is not an exposable field"),
    ({"relations": {"products": {"fields": ["id"]}}}, "relations: 'products' is not a relation"),
    ({"relations": {"order_set": {"fields": ["secret"]}}}, "relations.order_set.fields: 'secret'"),
    ({"aggregations": {"functions": ["sum"], "fields": ["email"]}}, "'email' is not numeric"),
    ({"fixed_filters": {"state__regex": "C."}}, "fixed_filters: lookup 'regex' does not apply"),
    ({"required_filters": ["email"]}, "required_filters: 'email' is not in filters"),
])
def test_a_configuration_that_ticks_something_impossible_is_refused_with_the_reason(config, expected):
    _, problems = model_query_resolve({"model": "demo_company.Customer", "fields": ["id"], **config})
    assert any(expected in p for p in problems), problems


def test_an_unknown_model_is_refused_with_an_example():
    _, problems = model_query_resolve({"model": "demo_company.Nope"})
    assert problems == ["Unknown model 'demo_company.Nope'; write app_label.ModelName of an installed app, e.g. "
                        "demo_company.Customer."]
