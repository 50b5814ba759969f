"""Demo data: the seed's tools as rows, company tables, users and a token."""
import random

from django.conf import settings

from mcp_tools.models import Prompt, Resource, Tool
from mcp_tools.services.tools import tool_save

from .models import Customer, Order, Product

TICKET_PRIORITIES = ["low", "medium", "high", "urgent"]

TICKET_STATUSES = ["open", "in_progress", "waiting", "resolved", "closed"]
TICKET_REF = {"type": ["integer", "string"], "description": "Ticket number or reference like 'TICK-00042'"}
TICKET_OUTPUT = {
    "type": "object",
    "properties": {
        "ticket_id": {"type": "string"},
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "priority": {"enum": TICKET_PRIORITIES},
        "status": {"enum": TICKET_STATUSES},
        "assignee": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["ticket_id", "id", "title", "priority", "status"],
}


def demo_tools(internal_api_base: str) -> list[dict]:
    api_host = internal_api_base.split("//", 1)[-1].split("/", 1)[0].split(":")[0]
    return [
        {
            "name": "database_query",
            "title": "Query the company database",
            "description": "Run one read-only SQL SELECT over the users, products and orders tables "
                           "(at most 100 rows).",
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "SQL SELECT query"}},
                "required": ["query"],
                "additionalProperties": False,
            },
            "annotations": {"readOnlyHint": True, "openWorldHint": False},
            "kind": "sql_query",
            "config": {"allowed_tables": ["users", "products", "orders"], "max_rows": 100},
            "rate_limit": "10/m",
        },
        {
            "name": "get_customer_by_email",
            "title": "Find a customer by e-mail",
            "description": "Retrieve customer record by email address",
            "input_schema": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}},
                "required": ["email"],
                "additionalProperties": False,
            },
            "output_schema": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "rows": {"type": "array", "items": {"type": "object"}},
                    "row_count": {"type": "integer"},
                    "truncated": {"type": "boolean"},
                },
                "required": ["rows", "row_count"],
            },
            "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
            "kind": "sql_query",
            "config": {
                "allowed_tables": ["users"],
                "query": "SELECT id, name, email, state, plan, created_at FROM users WHERE email = %(email)s",
                "max_rows": 1,
            },
        },
        # The same lookups as get_customer_by_email and a join, built without SQL: model query tools. Their
        # input and output schemas are generated from the config when they are saved.
        {
            "name": "find_customers",
            "title": "Find customers",
            "description": "Find customers by e-mail (exact or case-insensitive), state, plan or sign-up date; "
                           "pages of up to 50.",
            "kind": "model_query",
            "config": {
                "model": "demo_company.Customer",
                "fields": ["id", "name", "email", "state", "plan", "created_at"],
                "filters": {"email": ["exact", "iexact"], "state": ["exact", "in"], "plan": ["exact", "in"],
                            "created_at": ["gte", "lt", "year"]},
                "order_by": ["name", "email", "created_at"],
                "default_order": ["name"],
                "max_page_size": 50,
            },
        },
        {
            "name": "customers_with_last_order",
            "title": "Customers with their last order",
            "description": "Customers of one or more states (e.g. CA), each with their most recent order "
                           "(null if none); or count them per state.",
            "kind": "model_query",
            "config": {
                "model": "demo_company.Customer",
                "fields": ["id", "name", "email", "state"],
                "filters": {"state": ["exact", "in"]},
                "required_filters": ["state"],
                "order_by": ["name"],
                "default_order": ["name"],
                "relations": {"order_set": {"fields": ["id", "product_id", "quantity", "total_cents", "status",
                                                       "created_at"],
                                            "order_by": ["-created_at", "-id"], "first_only": True,
                                            "as": "last_order"}},
                "max_page_size": 50,
                "aggregations": {"functions": ["count"], "group_by": ["state"]},
            },
        },
        {
            "name": "send_notification",
            "title": "Notify a user",
            "description": "Send notification to user. Returns at once with the notification id and status "
                           "'queued' (a worker delivers it by e-mail), or 'skipped' with a skip_reason when the "
                           "recipient opted out of notifications.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "user_id": {"type": "string", "description": "The recipient: a user id (a customer id from the "
                                                   "users table, or an account id) or an e-mail address"},
                    "message": {"type": "string", "minLength": 1},
                    "subject": {"type": "string"},
                },
                "required": ["user_id", "message"],
                "additionalProperties": False,
            },
            "annotations": {"readOnlyHint": False, "destructiveHint": False, "openWorldHint": True},
            "kind": "send_notification",
            "config": {"channel": "email", "subject": "Message from your support team"},
            "rate_limit": "50/h",
        },
        {
            "name": "create_ticket",
            "title": "Create a support ticket",
            "description": "Create support ticket",
            "input_schema": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "description": {"type": "string", "minLength": 1},
                    "priority": {"type": "string", "enum": TICKET_PRIORITIES},
                },
                "required": ["title", "description"],
                "additionalProperties": False,
            },
            "output_schema": TICKET_OUTPUT,
            "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False,
                            "openWorldHint": False},
            "kind": "create_ticket",
            "config": {},
        },
        {
            "name": "crm_lookup",
            "title": "Search the CRM",
            "description": "Search customers in the CRM by e-mail or name (internal CRM API).",
            "input_schema": {
                "type": "object",
                "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
                "minProperties": 1,
                "additionalProperties": False,
            },
            "annotations": {"readOnlyHint": True, "openWorldHint": True},
            "kind": "http_request",
            "config": {"base_url": internal_api_base + "/demo/crm", "method": "POST",
                       "path": "/customers/search", "send_arguments_as": "json", "allowed_hosts": [api_host],
                       "max_response_bytes": 200_000},
            "timeout_s": 10,
        },
        {
            "name": "billing_invoice",
            "title": "Create an invoice",
            "description": "Create an invoice for a customer's unpaid orders (internal billing API).",
            "input_schema": {
                "type": "object",
                "properties": {"customer_id": {"type": "integer", "minimum": 1}},
                "required": ["customer_id"],
                "additionalProperties": False,
            },
            "annotations": {"readOnlyHint": False, "openWorldHint": True},
            "kind": "http_request",
            "config": {"base_url": internal_api_base + "/demo/billing", "method": "POST",
                       "path": "/invoices/create", "send_arguments_as": "json", "allowed_hosts": [api_host]},
            "timeout_s": 10,
        },
        {
            "name": "onboard_customer",
            "title": "Onboard a new customer",
            "description": "Create the CRM record, set up billing, send the welcome e-mail and open an "
                           "onboarding ticket. All or nothing: a failed step undoes the earlier ones.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "email": {"type": "string", "format": "email"},
                    "plan": {"type": "string", "enum": ["free", "starter", "pro", "enterprise"]},
                    "state": {"type": "string", "maxLength": 2},
                },
                "required": ["name", "email", "plan"],
                "additionalProperties": False,
            },
            "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False},
            "kind": "onboard_customer",
            "config": {},
        },
        {
            "name": "echo",
            "title": "Echo",
            "description": "Return the arguments unchanged (connectivity check).",
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
            "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
            "kind": "echo",
            "config": {},
        },
        *ticket_workflow_tools(),
    ]


def ticket_workflow_tools() -> list[dict]:
    """The support workflow beyond create_ticket, and the delivery check for send_notification."""
    return [
        {
            "name": "get_ticket",
            "title": "Read a support ticket",
            "description": "Get a support ticket with its status, priority, assignee and notes.",
            "input_schema": {"type": "object", "properties": {"ticket_id": TICKET_REF},
                             "required": ["ticket_id"], "additionalProperties": False},
            "output_schema": TICKET_OUTPUT,
            "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
            "kind": "get_ticket",
            "config": {},
        },
        {
            "name": "update_ticket",
            "title": "Update a support ticket",
            "description": "Change a ticket's status, priority or assignee (a username; the assignee is "
                           "e-mailed) and/or add a note (internal unless note_internal is false).",
            "input_schema": {
                "type": "object",
                "properties": {
                    "ticket_id": TICKET_REF,
                    "status": {"type": "string", "enum": TICKET_STATUSES},
                    "priority": {"type": "string", "enum": TICKET_PRIORITIES},
                    "assignee": {"type": "string", "maxLength": 150,
                                 "description": "Username of the support agent; empty string unassigns"},
                    "note": {"type": "string", "minLength": 1, "maxLength": 10000},
                    "note_internal": {"type": "boolean", "default": True},
                },
                "required": ["ticket_id"],
                "additionalProperties": False,
            },
            "output_schema": TICKET_OUTPUT,
            "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False,
                            "openWorldHint": False},
            "kind": "update_ticket",
            "config": {},
        },
        {
            "name": "list_tickets",
            "title": "List support tickets",
            "description": "List tickets, newest first, filtered by status, priority and assignee "
                           "(username, or 'none' for unassigned).",
            "input_schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": TICKET_STATUSES},
                    "priority": {"type": "string", "enum": TICKET_PRIORITIES},
                    "assignee": {"type": "string", "maxLength": 150},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                "additionalProperties": False,
            },
            "output_schema": {
                "type": "object",
                "properties": {"tickets": {"type": "array", "items": TICKET_OUTPUT},
                               "count": {"type": "integer"}},
                "required": ["tickets", "count"],
            },
            "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
            "kind": "list_tickets",
            "config": {},
        },
        {
            "name": "get_notification_status",
            "title": "Check a notification's delivery",
            "description": "Report whether a notification sent with send_notification was delivered "
                           "(queued, sending, sent, failed, or skipped because the recipient opted out), with "
                           "attempts, the last error and the skip reason.",
            "input_schema": {"type": "object",
                             "properties": {"notification_id": {"type": "integer", "minimum": 1}},
                             "required": ["notification_id"], "additionalProperties": False},
            "output_schema": {
                "type": "object",
                "properties": {
                    "notification_id": {"type": "integer"},
                    "status": {"enum": ["queued", "sending", "sent", "failed", "skipped"]},
                    "attempts": {"type": "integer"},
                    "last_error": {"type": "string"},
                    "skip_reason": {"type": "string"},
                    "sent_at": {"type": ["string", "null"]},
                },
                "required": ["notification_id", "status", "attempts"],
            },
            "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
            "kind": "get_notification_status",
            "config": {},
        },
    ]


def seed_tools(internal_api_base: str) -> list[Tool]:
    tools = []
    for spec in demo_tools(internal_api_base):
        tool = Tool.objects.filter(name=spec["name"]).first()
        if tool is None:
            tool = tool_save(tool=Tool(**spec))
        tools.append(tool)
    return tools


STATES = ["CA", "NY", "TX", "WA", "CA", "FL", "CA", "IL"]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen",
        "Torvalds"]


def seed_company() -> None:
    if Customer.objects.exists():
        return
    rng = random.Random(42)
    customers = [
        Customer.objects.create(name=f"{FIRST[i % 10]} {LAST[(i * 3) % 10]}",
                                email=f"{FIRST[i % 10].lower()}.{LAST[(i * 3) % 10].lower()}{i}@example.com",
                                state=STATES[i % len(STATES)], plan=["free", "starter", "pro"][i % 3])
        for i in range(20)
    ]
    products = [Product.objects.create(name=name, sku=f"SKU-{i:03d}", price_cents=price) for i, (name, price) in
                enumerate([("Starter kit", 4900), ("Pro licence", 19900), ("Support hours", 12000),
                           ("Training seat", 35000), ("Hardware token", 2500)])]
    for _ in range(40):
        customer, product = rng.choice(customers), rng.choice(products)
        quantity = rng.randint(1, 3)
        Order.objects.create(customer=customer, product=product, quantity=quantity,
                             total_cents=quantity * product.price_cents,
                             status=rng.choice(["paid", "paid", "unpaid", "refunded"]))


def seed_resources_and_prompts() -> None:
    Resource.objects.get_or_create(uri="docs://support/escalation-policy", defaults={
        "name": "escalation-policy", "title": "Support escalation policy", "mime_type": "text/markdown",
        "description": "When and how to escalate a ticket.",
        "text": "# Escalation\n- urgent: page the on-call engineer within 15 minutes\n"
                "- high: answer within 4 business hours\n- medium/low: answer within 2 business days\n"})
    Prompt.objects.get_or_create(name="triage_ticket", defaults={
        "title": "Triage a support request", "description": "Turn a customer message into a ticket.",
        "arguments": [{"name": "message", "description": "The customer's message", "required": True},
                      {"name": "customer_email", "description": "Who wrote it", "required": False,
                       "default": "the customer"}],
        "template": "Read this message from {customer_email} and create a ticket with a short title, a clear "
                    "description and a priority (low, medium, high, urgent):\n\n{message}"})


def default_internal_api_base() -> str:
    return getattr(settings, "MCP_DEMO_API_BASE", "http://127.0.0.1:8000")
