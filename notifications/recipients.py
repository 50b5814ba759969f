"""Who a send_notification ``user_id`` names."""
from django.contrib.auth import get_user_model

from mcp_tools.exceptions import ToolError

from .models import NotificationPreference


def recipient_resolve(*, user_id) -> str:
    """The recipient to queue for ``user_id``: an e-mail address as given, or a user id resolved to a person.

    A numeric id keeps its own name when an administrator set preferences for that id (they hold the
    address and channel); otherwise it is a customer of the company tables (``users``), then a Django
    user, and becomes that person's e-mail address, so their preferences keyed by address apply.
    Raises ToolError (nothing queued) for an id that names nobody.
    """
    value = str(user_id).strip()
    if "@" in value:
        return value
    if NotificationPreference.objects.filter(recipient__iexact=value).exists():
        return value
    if value.isdigit():
        from demo_company.models import Customer

        email = Customer.objects.filter(pk=int(value)).values_list("email", flat=True).first()
        if not email:
            email = get_user_model().objects.filter(pk=int(value), is_active=True).exclude(email="") \
                .values_list("email", flat=True).first()
        if email:
            return email
    raise ToolError(f"No user with id '{value}': give the id of a customer (the users table) or of an account, "
                    "or an e-mail address. Nothing was sent.")
