"""Read-only queries."""
import json

from .models import ApiToken, Tool
from .services.principals import ALL_TOOLS_SCOPE, TOOL_SCOPE_PREFIX, oauth_scopes
from .services.lookup_cache import TOOLS, cached_lookup
from .services.tokens import allowed_tool_ids


def tools_for_token(token) -> list[Tool]:
    """Enabled tools the credential (API token or OAuth access token) may call, in a stable order."""
    tools = Tool.objects.filter(enabled=True).order_by("name")
    if token is None:
        return []
    if not isinstance(token, ApiToken):
        scopes = oauth_scopes(token)
        if ALL_TOOLS_SCOPE in scopes:
            return list(tools)
        names = [s[len(TOOL_SCOPE_PREFIX):] for s in scopes if s.startswith(TOOL_SCOPE_PREFIX)]
        return list(tools.filter(name__in=names))
    if not token.all_tools:
        tools = tools.filter(pk__in=allowed_tool_ids(token))
    return list(tools)


def credential_scope_key(token) -> tuple:
    """What, besides the tools themselves, decides which tools ``token`` sees (see tools_for_token).

    Tool changes bump the tools generation; an API token's grants come with its (generation-checked)
    row, so a grant change gives a new key.
    """
    if token is None:
        return ("none",)
    if isinstance(token, ApiToken):
        return ("token", None if token.all_tools else frozenset(allowed_tool_ids(token)))
    return ("oauth", frozenset(oauth_scopes(token)))


class ToolListing:
    """The REST listing of one scope: the entries and the whole ``{"tools": [...]}`` body, serialized once.

    Shared by every request of the scope in this process: read it, never change it.
    """

    __slots__ = ("entries", "body")

    def __init__(self, entries: tuple, body: bytes) -> None:
        self.entries = entries
        self.body = body

    def __copy__(self):  # immutable: the lookup cache's per-call copy can be the object itself
        return self


def rest_tool_listing(token) -> ToolListing:
    """GET /mcp/v1/tools for ``token``, built once per (tools generation, scope) and process."""
    def build() -> ToolListing:
        entries = tuple({"name": t.name, "description": t.description, "input_schema": t.input_schema}
                        for t in tools_for_token(token))
        return ToolListing(entries, json_body({"tools": list(entries)}))

    return cached_lookup(kind=TOOLS, key=("rest-list",) + credential_scope_key(token), load=build)


def json_body(data) -> bytes:
    """JSON the way DRF's JSONRenderer writes it (compact, UTF-8, U+2028/U+2029 escaped)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
