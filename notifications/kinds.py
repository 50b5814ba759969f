from mcp_tools.kinds.base import HandlerKind, register

from .services import notification_as_dict, notification_queue


@register
class SendNotificationKind(HandlerKind):
    """Records a queued notification and returns at once; a Celery worker delivers it."""

    name = "send_notification"
    label = "Send a notification (delivered by a worker)"
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "channel": {"enum": ["email", "webhook"], "default": "email"},
            "webhook_url": {"type": "string", "pattern": "^https?://"},
            "subject": {"type": "string"},
        },
    }

    def check_config(self, config):
        if config.get("channel") == "webhook" and not config.get("webhook_url"):
            return ["A webhook channel needs webhook_url."]
        return []

    def run(self, arguments, config, context):
        channel = arguments.get("channel") or config.get("channel", "email")
        if channel == "webhook" and not config.get("webhook_url"):
            from mcp_tools.exceptions import ToolError
            raise ToolError("This tool has no webhook configured; use the email channel.")
        notification = notification_queue(
            recipient=arguments["user_id"],
            message=arguments["message"],
            subject=arguments.get("subject") or config.get("subject", ""),
            channel=channel,
            target=config.get("webhook_url", "") if channel == "webhook" else "",
            created_by_tool=context.tool_name,
            created_by_token=context.token_prefix,
            request_id=context.request_id,
        )
        return notification_as_dict(notification)
