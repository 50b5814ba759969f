"""Tools an admin writes: fixed-query placeholders checked at save, schema dialects, one integer rule,
the seed's REST shape for database_query, and send_notification's user ids."""
import pytest

from demo_company.models import Customer
from demo_company.seed import seed_company, seed_tools
from mcp_tools.forms import ToolAdminForm
from mcp_tools.kinds.base import InvocationContext, get_kind
from mcp_tools.services.argument_checks import arguments_normalised
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.schemas import input_schema_problems, instance_problems
from mcp_tools.exceptions import InvalidArguments
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)

USERS_SCHEMA = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}


def sql_check(config, input_schema=USERS_SCHEMA):
    return get_kind("sql_query").check_config(config, input_schema=input_schema)


def form_for(tool, **changes):
    form = ToolAdminForm(instance=tool)
    data = {name: form.initial.get(name) for name in form.fields}
    for key in ("input_schema", "output_schema", "annotations", "config", "sensitive_fields"):
        if key in data and not isinstance(data[key], str):
            data[key] = form.fields[key].prepare_value(data[key])
    data.update(changes)
    return ToolAdminForm(data=data, instance=tool)


class TestFixedQueries:
    def test_the_seeded_get_customer_by_email_saves_from_its_admin_page(self):
        tools = {t.name: t for t in seed_tools("http://127.0.0.1:9")}
        form = form_for(tools["get_customer_by_email"], rate_limit="20/m")
        assert form.is_valid(), form.errors

    def test_a_placeholder_that_is_not_an_argument_is_refused(self):
        problems = sql_check({"allowed_tables": ["users"], "query": "SELECT id FROM users WHERE email = %(mail)s"})
        assert problems == ["Fixed query: Placeholder %(mail)s is not a property of the input schema."]

    def test_a_query_the_database_cannot_plan_is_refused(self):
        problems = sql_check({"allowed_tables": ["users"], "query": "SELECT nope FROM users WHERE email = %(email)s"})
        assert len(problems) == 1 and "nope" in problems[0] and "does not exist" in problems[0]

    def test_another_placeholder_syntax_is_refused_clearly(self):
        for query in ("SELECT id FROM users WHERE email = :email", "SELECT id FROM users WHERE email = $1"):
            problems = sql_check({"allowed_tables": ["users"], "query": query})
            assert problems and all(p.startswith("Fixed query:") for p in problems), problems
        problems = sql_check({"allowed_tables": ["users"], "query": "SELECT id FROM users WHERE email LIKE '%x'"})
        assert problems == ["Fixed query: Placeholders are written %(name)s; write a literal % as %%."]

    def test_a_literal_percent_written_twice_is_fine(self):
        assert sql_check({"allowed_tables": ["users"],
                          "query": "SELECT id FROM users WHERE email LIKE %(email)s || '%%'"}) == []

    def test_a_tool_with_no_query_and_no_query_argument_cannot_be_saved(self):
        problems = sql_check({"allowed_tables": ["users"]}, input_schema={"type": "object", "properties": {}})
        assert len(problems) == 1 and "could never run" in problems[0]
        assert sql_check({"allowed_tables": ["users"]},
                         input_schema={"type": "object", "properties": {"query": {"type": "string"}}}) == []

    def test_the_seeded_lookup_runs(self):
        seed_company()
        customer = Customer.objects.order_by("id").first()
        tools = {t.name: t for t in seed_tools("http://127.0.0.1:9")}
        context = InvocationContext(tool_name="get_customer_by_email", request_id="t", timeout_s=5)
        result = get_kind("sql_query").run({"email": customer.email}, tools["get_customer_by_email"].config, context)
        assert [row["id"] for row in result["rows"]] == [customer.id]


class TestSchemas:
    DRAFT7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"carrier": {"type": "string"}, "tracking_number": {"type": "string"}},
              "dependencies": {"carrier": ["tracking_number"]}}

    def test_a_draft_07_schema_is_validated_as_draft_07(self):
        assert input_schema_problems(self.DRAFT7) == []
        assert instance_problems(self.DRAFT7, {"carrier": "ups"}) == [
            "$: 'tracking_number' is a dependency of 'carrier'"]
        assert instance_problems(self.DRAFT7, {"carrier": "ups", "tracking_number": "1Z"}) == []

    def test_an_unknown_dialect_is_refused_at_save(self):
        problems = input_schema_problems({"$schema": "http://example.com/my-dialect", "type": "object"})
        assert len(problems) == 1 and "Unknown JSON Schema dialect" in problems[0]

    def test_an_undeclared_schema_is_2020_12(self):
        schema = {"type": "object", "dependentRequired": {"carrier": ["tracking_number"]}}
        assert instance_problems(schema, {"carrier": "ups"})


class TestOneIntegerRule:
    def test_integral_numbers_become_integers_where_the_schema_says_integer(self):
        schema = {"type": "object", "properties": {"n": {"type": "integer"}, "x": {"type": "number"},
                                                   "ids": {"type": "array", "items": {"type": ["integer", "string"]}}}}
        assert arguments_normalised(schema, {"n": 2.0, "x": 2.0, "ids": [1.0, "a"]}) == {"n": 2, "x": 2.0,
                                                                                       "ids": [1, "a"]}

    def test_a_ticket_id_of_1_0_reaches_the_ticket(self, issue_token):
        from tickets.models import Ticket

        seed_tools("http://127.0.0.1:9")
        ticket = Ticket.objects.create(title="t", description="d")
        caller = Caller(token=issue_token(all_tools=True).token, transport="rest")
        invocation = tool_invoke(name="get_ticket", arguments={"ticket_id": float(ticket.pk)}, caller=caller)
        assert invocation.ok, invocation.message


class TestSendNotification:
    def run(self, user_id):
        tools = {t.name: t for t in seed_tools("http://127.0.0.1:9")}
        context = InvocationContext(tool_name="send_notification", request_id="t", timeout_s=5)
        return get_kind("send_notification").run({"user_id": user_id, "message": "hi"},
                                                 tools["send_notification"].config, context)

    def test_a_customer_id_is_resolved_to_the_customer(self):
        seed_company()
        customer = Customer.objects.order_by("id").first()
        result = self.run(str(customer.pk))
        assert result["status"] == "queued"
        assert Notification.objects.get().recipient == customer.email

    def test_an_unknown_id_is_refused_at_call_time_and_nothing_is_queued(self):
        seed_company()
        with pytest.raises(InvalidArguments, match="No user with id '999999'"):
            self.run("999999")
        assert Notification.objects.count() == 0

    def test_an_email_address_is_still_accepted(self):
        assert self.run("someone@example.com")["status"] == "queued"
        assert Notification.objects.get().recipient == "someone@example.com"
