from mcp_tools.kinds.base import HandlerKind, register

from .services import ticket_as_dict, ticket_create


@register
class CreateTicketKind(HandlerKind):
    name = "create_ticket"
    label = "Create a support ticket"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"default_priority": {"enum": ["low", "medium", "high", "urgent"]}},
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
