import pytest

from mcp_tools.models import Tool
from mcp_tools.services.invocation import Caller
from mcp_tools.services.tokens import token_issue
from mcp_tools.services.tools import tool_save


@pytest.fixture
def notify_tool(transactional_db):
    """Make a send_notification tool (no rate limit) for e-mail or a webhook URL."""
    def make(name="notify", *, webhook_url=None):
        config = {"channel": "webhook", "webhook_url": webhook_url} if webhook_url else {"channel": "email"}
        return tool_save(tool=Tool(
            name=name, description="Notify", kind="send_notification", config=config,
            input_schema={"type": "object", "properties": {"user_id": {"type": "string"},
                                                           "message": {"type": "string"},
                                                           "subject": {"type": "string"}},
                          "required": ["user_id", "message"]}))
    return make


@pytest.fixture
def caller(transactional_db):
    issued = token_issue(name="notifier", all_tools=True, rate_limit="100000/m")
    return Caller(token=issued.token, client_ip="127.0.0.1", transport="test")
