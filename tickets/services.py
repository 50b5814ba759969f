from .models import Ticket


def ticket_create(*, title: str, description: str, priority: str = Ticket.Priority.MEDIUM, requester: str = "",
                  created_by_tool: str = "", created_by_token: str = "", request_id: str = "") -> Ticket:
    return Ticket.objects.create(
        title=title, description=description, priority=priority, requester=requester,
        created_by_tool=created_by_tool, created_by_token=created_by_token, request_id=request_id,
    )


def ticket_as_dict(ticket: Ticket) -> dict:
    return {
        "ticket_id": ticket.reference,
        "id": ticket.pk,
        "title": ticket.title,
        "description": ticket.description,
        "priority": ticket.priority,
        "status": ticket.status,
        "requester": ticket.requester,
        "created_at": ticket.created_at.isoformat(),
    }
