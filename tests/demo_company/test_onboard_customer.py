import pytest

from demo_company.models import BillingAccount, Customer
from mcp_tools.models import AuditEvent
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.tokens import token_issue
from notifications.models import Notification
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def caller():
    from demo_company.seed import seed_tools

    seed_tools("http://127.0.0.1:8000")
    return Caller(token=token_issue(name="t", all_tools=True).token, transport="test")


def onboard(caller, **arguments):
    arguments = {"name": "Acme Ltd", "email": "ops@acme.example", "plan": "pro", **arguments}
    return tool_invoke(name="onboard_customer", arguments=arguments, caller=caller)


def test_it_runs_every_step(caller):
    result = onboard(caller)
    assert result.ok, result.message
    customer = Customer.objects.get(email="ops@acme.example")
    assert result.result["customer_id"] == customer.pk
    assert BillingAccount.objects.get(customer=customer).plan == "pro"
    assert Notification.objects.get(pk=result.result["welcome_notification_id"]).recipient == "ops@acme.example"
    assert Ticket.objects.get().reference == result.result["onboarding_ticket"]
    assert result.result["steps"] == ["create_crm_record", "setup_billing", "send_welcome_email",
                                      "create_onboarding_ticket"]


def test_a_failing_step_undoes_the_earlier_ones_and_says_which(caller):
    assert onboard(caller).ok
    counts = (Customer.objects.count(), BillingAccount.objects.count(), Notification.objects.count(),
              Ticket.objects.count())
    result = onboard(caller, name="Acme again")  # same e-mail: the CRM step conflicts
    assert result.outcome == "tool_error"
    assert "failed at step 'create_crm_record'" in result.message and "Nothing was kept" in result.message
    assert (Customer.objects.count(), BillingAccount.objects.count(), Notification.objects.count(),
            Ticket.objects.count()) == counts


def test_a_late_failure_rolls_back_customer_billing_and_email(caller, monkeypatch):
    import demo_company.kinds as kinds

    def broken_ticket(**kwargs):
        raise kinds.IntegrityError("ticket system rejected the row")

    monkeypatch.setattr(kinds, "ticket_create", broken_ticket)
    result = onboard(caller)
    assert "failed at step 'create_onboarding_ticket'" in result.message
    assert "Undone: create_crm_record, setup_billing, send_welcome_email" in result.message
    assert (Customer.objects.count(), BillingAccount.objects.count(), Notification.objects.count()) == (0, 0, 0)
    assert AuditEvent.objects.get().outcome == "tool_error"
