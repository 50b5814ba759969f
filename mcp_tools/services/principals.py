"""Who is calling: an API token, an OAuth 2.1 access token, or a staff user in the admin.

Transports hand whatever their authentication produced to ``Caller(token=...)``;
everything downstream asks the Caller, never the credential type.
"""
from dataclasses import dataclass
from typing import Any

from ..models import ApiToken, Tool
from .tokens import token_may_use

# OAuth scopes: one that grants every tool the server offers, and one per tool.
ALL_TOOLS_SCOPE = "mcp:tools"
TOOL_SCOPE_PREFIX = "tool:"


def tool_scope(tool_name: str) -> str:
    return f"{TOOL_SCOPE_PREFIX}{tool_name}"


def oauth_scopes(access_token) -> set[str]:
    return set((access_token.scope or "").split())


@dataclass(frozen=True)
class Caller:
    """Who is calling and through which door."""

    token: Any = None  # an ApiToken or a django-oauth-toolkit AccessToken
    user: Any = None  # a staff user, for calls made from the admin
    client_ip: str | None = None
    transport: str = "rest"
    protocol_version: str = ""
    # The user's answer when the transport asked to confirm a requires_confirmation tool
    # ("accept", "decline", "cancel"); empty when nobody was asked. Recorded in the audit event.
    confirmation: str = ""
    # Anonymous callers only: ids of the tools an admin published on an MCP endpoint
    # that needs no authentication (McpEndpoint.requires_auth off).
    public_tool_ids: frozenset = frozenset()
    # The ids of the tools this door shows the caller (an MCP endpoint limits its tool set), or None
    # when the credential alone decides. A tool outside it is refused (and audited) like one not granted.
    visible_tool_ids: frozenset | None = None

    @property
    def api_token(self) -> ApiToken | None:
        return self.token if isinstance(self.token, ApiToken) else None

    @property
    def oauth_token(self):
        return self.token if self.token is not None and not isinstance(self.token, ApiToken) else None

    @property
    def label(self) -> str:
        """Short, non-secret name of the credential for audit rows and logs."""
        if self.api_token is not None:
            return self.api_token.prefix
        if self.oauth_token is not None:
            return f"oauth:{self.oauth_token.application.client_id}"[:16] if self.oauth_token.application_id \
                else "oauth"
        return ""

    @property
    def acting_user(self):
        if self.user is not None:
            return self.user
        return getattr(self.oauth_token, "user", None)

    def may_use(self, tool: Tool) -> bool:
        if self.visible_tool_ids is not None and tool.pk not in self.visible_tool_ids:
            return False
        if self.oauth_token is not None:
            scopes = oauth_scopes(self.oauth_token)
            return ALL_TOOLS_SCOPE in scopes or tool_scope(tool.name) in scopes
        if self.user is not None and self.token is None:
            return bool(self.user.is_active and self.user.is_superuser)
        if self.token is None:
            return tool.pk in self.public_tool_ids
        return token_may_use(self.token, tool)

    def scope_needed(self, tool: Tool) -> str | None:
        """The OAuth scope that would let this caller use ``tool`` (None for other credentials)."""
        return tool_scope(tool.name) if self.oauth_token is not None else None
