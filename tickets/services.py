"""Writing tickets (services) and reading them (selectors), as plain functions."""
import logging
import re

from django.contrib.auth import get_user_model
from django.db import transaction

from mcp_tools.exceptions import InvalidArguments

from .models import Ticket, TicketComment

logger = logging.getLogger("tickets")

REFERENCE = re.compile(r"^TICK-(\d{1,10})$", re.IGNORECASE)
MAX_LIST_LIMIT = 100


def ticket_create(*, title: str, description: str, priority: str = Ticket.Priority.MEDIUM, requester: str = "",
                  created_by_tool: str = "", created_by_token: str = "", request_id: str = "") -> Ticket:
    return Ticket.objects.create(
        title=title, description=description, priority=priority, requester=requester,
        created_by_tool=created_by_tool, created_by_token=created_by_token, request_id=request_id,
    )


def ticket_parse_id(value) -> int:
    """Accept 42, 42.0 (JSON Schema's integer), "42" or "TICK-00042"; anything else is a clear InvalidArguments."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = REFERENCE.match(value.strip())
        if match:
            return int(match.group(1))
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    raise InvalidArguments("Give ticket_id as a number or a reference like 'TICK-00042'.")


def ticket_get(*, ticket_id) -> Ticket | None:
    return Ticket.objects.select_related("assignee").filter(pk=ticket_parse_id(ticket_id)).first()


def tickets_list(*, status: str = "", priority: str = "", assignee: str = "", limit: int = 20) -> list[Ticket]:
    """Newest first. ``assignee`` is a username; "none" lists unassigned tickets."""
    tickets = Ticket.objects.select_related("assignee").order_by("-created_at", "-pk")
    if status:
        tickets = tickets.filter(status=status)
    if priority:
        tickets = tickets.filter(priority=priority)
    if assignee:
        tickets = tickets.filter(assignee__isnull=True) if assignee.lower() == "none" else \
            tickets.filter(assignee__username=assignee)
    return list(tickets[:max(1, min(int(limit), MAX_LIST_LIMIT))])


def _user_by_username(username: str):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidArguments(f"No active user '{username}' to assign the ticket to.")
    return user


def ticket_update(*, ticket: Ticket, status: str | None = None, priority: str | None = None,
                  assignee_username: str | None = None, note: str = "", note_internal: bool = True,
                  author=None, author_label: str = "") -> Ticket:
    """Change status/priority/assignee and add a note, in one transaction.

    A new assignee is notified by e-mail once the transaction commits.
    ``assignee_username=""`` unassigns.
    """
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        previous_assignee_id = ticket.assignee_id
        fields = []
        if status is not None:
            if status not in Ticket.Status.values:
                raise InvalidArguments(f"Unknown status '{status}'; use one of {', '.join(Ticket.Status.values)}.")
            ticket.status = status
            fields.append("status")
        if priority is not None:
            if priority not in Ticket.Priority.values:
                raise InvalidArguments(
                    f"Unknown priority '{priority}'; use one of {', '.join(Ticket.Priority.values)}.")
            ticket.priority = priority
            fields.append("priority")
        if assignee_username is not None:
            ticket.assignee = _user_by_username(assignee_username) if assignee_username else None
            fields.append("assignee")
        if fields:
            ticket.save(update_fields=[*fields, "updated_at"])
        if note:
            TicketComment.objects.create(ticket=ticket, body=note, internal=note_internal, author=author,
                                         author_label=author_label[:128])
        if ticket.assignee_id and ticket.assignee_id != previous_assignee_id:
            ticket_notify_assignee(ticket=ticket)
    return ticket


def ticket_notify_assignee(*, ticket: Ticket):
    """Queue an e-mail to the ticket's assignee (delivered by a worker after commit).

    Called by ``ticket_update`` and by the admin when the assignee changes. Returns
    the notification, or None when the assignee has no e-mail address.
    """
    from notifications.services import notification_queue

    assignee = ticket.assignee
    if assignee is None:
        return None
    if not assignee.email:
        logger.warning("Ticket %s assigned to %s, who has no e-mail address; not notified.", ticket.pk,
                       assignee.username)
        return None
    return notification_queue(
        recipient=assignee.email,
        subject=f"{ticket.reference} assigned to you: {ticket.title}"[:200],
        message=(f"Ticket {ticket.reference} ({ticket.get_priority_display()} priority, "
                 f"{ticket.get_status_display().lower()}) is now assigned to you.\n\n{ticket.title}\n\n"
                 f"{ticket.description}"),
        created_by_tool="ticket_assignment", request_id=ticket.request_id,
    )


def ticket_as_dict(ticket: Ticket, *, with_comments: bool = False) -> dict:
    data = {
        "ticket_id": ticket.reference,
        "id": ticket.pk,
        "title": ticket.title,
        "description": ticket.description,
        "priority": ticket.priority,
        "status": ticket.status,
        "requester": ticket.requester,
        "assignee": ticket.assignee.username if ticket.assignee_id else None,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }
    if with_comments:
        data["notes"] = [
            {"body": c.body, "internal": c.internal,
             "author": c.author.username if c.author_id else c.author_label,
             "created_at": c.created_at.isoformat()}
            for c in ticket.comments.select_related("author").order_by("created_at", "pk")
        ]
    return data
