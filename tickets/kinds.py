from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.base import HandlerKind, register

from .services import ticket_as_dict, ticket_create, ticket_get, ticket_update, tickets_list

_NO_CONFIG = {"type": "object", "additionalProperties": False, "properties": {}}


@register
class CreateTicketKind(HandlerKind):
    name = "create_ticket"
    label = "Create a support ticket"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"default_priority": {
            "enum": ["low", "medium", "high", "urgent"], "title": "Default priority",
            "description": "Priority of a ticket whose caller gives none; blank means medium."}},
    }

    def run(self, arguments, config, context):
        ticket = ticket_create(
            title=arguments["title"],
            description=arguments["description"],
            priority=arguments.get("priority") or config.get("default_priority", "medium"),
            requester=arguments.get("requester", ""),
            created_by_tool=context.tool_name,
            created_by_token=context.token_prefix,
            request_id=context.request_id,
        )
        return ticket_as_dict(ticket)


def _ticket_or_error(ticket_id):
    ticket = ticket_get(ticket_id=ticket_id)
    if ticket is None:
        raise ToolError(f"No ticket {ticket_id}.")
    return ticket


@register
class GetTicketKind(HandlerKind):
    name = "get_ticket"
    label = "Read a support ticket with its notes"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"include_internal_notes": {
            "type": "boolean", "default": True, "title": "Include internal notes",
            "description": "Off: the agent sees only the notes meant for the requester."}},
    }

    def run(self, arguments, config, context):
        data = ticket_as_dict(_ticket_or_error(arguments["ticket_id"]), with_comments=True)
        if not config.get("include_internal_notes", True):
            data["notes"] = [note for note in data["notes"] if not note["internal"]]
        return data


@register
class UpdateTicketKind(HandlerKind):
    name = "update_ticket"
    label = "Update a support ticket (status, priority, assignee, note)"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"allow_assign": {
            "type": "boolean", "default": True, "title": "Allow assigning",
            "description": "Off: calls that try to change the assignee are refused."}},
    }

    def run(self, arguments, config, context):
        if "assignee" in arguments and not config.get("allow_assign", True):
            raise ToolError("This tool may not change assignees.")
        changes = {key: arguments[key] for key in ("status", "priority", "assignee", "note") if key in arguments}
        if not changes:
            raise ToolError("Nothing to change: give status, priority, assignee or note.")
        ticket = ticket_update(
            ticket=_ticket_or_error(arguments["ticket_id"]),
            status=arguments.get("status"),
            priority=arguments.get("priority"),
            assignee_username=arguments.get("assignee"),
            note=arguments.get("note", ""),
            note_internal=arguments.get("note_internal", True),
            author_label=f"{context.tool_name} via token {context.token_prefix or '(admin)'}",
        )
        return ticket_as_dict(ticket, with_comments=True)


@register
class ListTicketsKind(HandlerKind):
    name = "list_tickets"
    label = "List support tickets"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"max_limit": {
            "type": "integer", "minimum": 1, "maximum": 100, "title": "Max tickets per call",
            "description": "Upper bound on the caller's limit argument; blank means 100."}},
    }

    def run(self, arguments, config, context):
        limit = min(arguments.get("limit", 20), config.get("max_limit", 100))
        tickets = tickets_list(status=arguments.get("status", ""), priority=arguments.get("priority", ""),
                               assignee=arguments.get("assignee", ""), limit=limit)
        return {"tickets": [ticket_as_dict(t) for t in tickets], "count": len(tickets)}
