"""The seed's multi-service orchestration, as one code-defined kind.

Every step writes to this database inside the pipeline's transaction, and the
welcome e-mail is only enqueued when that transaction commits. So a failure at
any step undoes the earlier ones, and the error says which step failed.
"""
from django.db import IntegrityError, transaction

from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.base import HandlerKind, register
from notifications.services import notification_queue
from tickets.services import ticket_create

from .models import BillingAccount, Customer

PLANS = ("free", "starter", "pro", "enterprise")


@register
class OnboardCustomerKind(HandlerKind):
    name = "onboard_customer"
    label = "Onboard a customer (CRM, billing, welcome e-mail, ticket)"
    needs_worker = True
    atomic = True
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def run(self, arguments, config, context):
        steps_done = []

        def step(name, action):
            try:
                with transaction.atomic():
                    result = action()
            except IntegrityError as exc:
                raise ToolError(self._failure(name, steps_done, "conflicts with existing data "
                                              f"({str(exc).splitlines()[0][:200]})")) from None
            steps_done.append(name)
            return result

        plan = arguments["plan"]
        if plan not in PLANS:
            raise ToolError(self._failure("create_crm_record", steps_done, f"unknown plan '{plan}'"))
        customer = step("create_crm_record", lambda: Customer.objects.create(
            name=arguments["name"], email=arguments["email"].lower(), state=arguments.get("state", ""), plan=plan))
        billing = step("setup_billing", lambda: BillingAccount.objects.create(customer=customer, plan=plan))
        welcome = step("send_welcome_email", lambda: notification_queue(
            recipient=customer.email, subject="Welcome aboard",
            message=f"Hello {customer.name}, your {plan} account is ready.",
            created_by_tool=context.tool_name, created_by_token=context.token_prefix,
            request_id=context.request_id))
        ticket = step("create_onboarding_ticket", lambda: ticket_create(
            title=f"Onboard {customer.name}", description=f"New {plan} customer {customer.email}.",
            priority="medium", requester=customer.email, created_by_tool=context.tool_name,
            created_by_token=context.token_prefix, request_id=context.request_id))
        return {
            "customer_id": customer.pk,
            "billing_id": billing.pk,
            "welcome_notification_id": welcome.pk,
            "welcome_email_status": welcome.status,
            "onboarding_ticket": ticket.reference,
            "steps": steps_done,
        }

    @staticmethod
    def _failure(step_name, done, reason):
        undone = f" Undone: {', '.join(done)}." if done else ""
        return f"Onboarding failed at step '{step_name}': {reason}. Nothing was kept.{undone}"
