"""Who a send_notification ``user_id`` names."""
from django.contrib.auth import get_user_model

from demo_company.models import Customer
from mcp_tools.exceptions import InvalidArguments

from .models import NotificationPreference
from .services import notification_validate


def recipient_resolve(*, user_id, channel: str) -> str:
    """The recipient to queue for ``user_id``: an e-mail address as given, or a user id resolved to a person.

    ``channel`` is the channel the call will use when no preference overrides it (``email`` or ``webhook``).
    A numeric id keeps its own name when an administrator set preferences for that id (they hold the
    address and channel); otherwise it is a customer of the company tables (``users``), then a Django
    user, and becomes that person's e-mail address, so their preferences keyed by address apply. On the
    webhook channel any other id is passed on as given: the receiver knows its own users.
    Raises InvalidArguments (nothing queued) for a value that cannot be one recipient or an id that names nobody.
    """
    value = str(user_id)
    notification_validate(recipient=value)  # blank, too long, control characters: refused with the reason
    value = value.strip()
    if "@" in value:
        return value
    if NotificationPreference.objects.filter(recipient__iexact=value).exists():
        return value
    if value.isdigit():
        email = Customer.objects.filter(pk=int(value)).values_list("email", flat=True).first()
        if not email:
            email = get_user_model().objects.filter(pk=int(value), is_active=True).exclude(email="") \
                .values_list("email", flat=True).first()
        if email:
            return email
    if channel == "webhook":
        return value
    raise InvalidArguments(f"No user with id '{value[:80]}': give the id of a customer (the users table) or of an "
                           "account, or an e-mail address. Nothing was sent.")
