from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.base import HandlerKind, register

from .preferences import NoWebhookUrl
from .recipients import recipient_resolve
from .services import notification_as_dict, notification_get, notification_queue


def recipient_masked(recipient: str) -> str:
    """An e-mail address shown as 'a***@example.com'; anything else as it is."""
    local, at, domain = recipient.rpartition("@")
    return f"{local[:1]}***@{domain}" if at and local else recipient


@register
class SendNotificationKind(HandlerKind):
    """Records a queued notification and returns at once; a Celery worker delivers it.

    The recipient's preferences may pick the channel and address, or rule the notification
    out: then the result says status 'skipped' with ``skip_reason`` and nothing is sent.
    If the task queue is down the call fails with 'unavailable' (HTTP 503) and records nothing.
    """

    name = "send_notification"
    label = "Send a notification (delivered by a worker)"
    needs_worker = True
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "channel": {"enum": ["email", "webhook"], "default": "email", "title": "Default channel",
                        "description": "Used when neither the caller nor the recipient's preference names one."},
            "webhook_url": {"type": "string", "pattern": "^https?://", "title": "Webhook URL",
                            "description": "Needed when the default channel is webhook.",
                            "examples": ["https://hooks.example.com/notify"]},
            "subject": {"type": "string", "title": "Default subject",
                        "description": "E-mail subject when the caller gives none."},
        },
    }

    def check_config(self, config):
        if config.get("channel") == "webhook" and not config.get("webhook_url"):
            return ["A webhook channel needs webhook_url."]
        return []

    def run(self, arguments, config, context):
        channel = arguments.get("channel") or None  # the agent's explicit choice; else the recipient's preference
        if channel is not None and channel not in ("email", "webhook"):
            raise ToolError(f"Unknown channel '{channel}'; use 'email' or 'webhook'.")
        try:
            notification = notification_queue(
                recipient=recipient_resolve(user_id=arguments["user_id"],
                                            channel=channel or config.get("channel", "email")),
                message=arguments["message"],
                subject=arguments.get("subject") or config.get("subject", ""),
                channel=channel,
                default_channel=config.get("channel", "email"),
                webhook_url=config.get("webhook_url", ""),
                created_by_tool=context.tool_name,
                created_by_token=context.token_prefix,
                request_id=context.request_id,
                require_broker=True,
            )
        except NoWebhookUrl:
            raise ToolError("This tool has no webhook configured and the recipient has no webhook URL; "
                            "use the email channel.") from None
        answer = notification_as_dict(notification)
        # The caller named a person by id: never hand back the address the id resolved to, or walking the
        # ids would list every customer's e-mail address.
        answer["recipient"] = str(arguments["user_id"])
        return answer


@register
class NotificationStatusKind(HandlerKind):
    """Reports the delivery state of a notification the same token queued."""

    name = "get_notification_status"
    label = "Check a notification's delivery"
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def run(self, arguments, config, context):
        notification_id = arguments.get("notification_id")
        if not isinstance(notification_id, int) or isinstance(notification_id, bool) or notification_id < 1:
            raise ToolError("Give notification_id as a positive integer, as send_notification returned it.")
        notification = notification_get(notification_id=notification_id, token_prefix=context.token_prefix)
        if notification is None:
            raise ToolError(f"No notification {notification_id} was sent with this token.")
        answer = notification_as_dict(notification)
        answer["recipient"] = recipient_masked(answer["recipient"])  # an id's address is not the caller's to learn
        return answer
