"""The shape of the OAuth access and refresh tokens this server's authorization server issues.

django-oauth-toolkit's default tokens are 30 bare letters and digits, which nothing can tell
apart from ordinary text. Ours carry a fixed prefix (``mcpoa_`` access, ``mcpor_`` refresh) and
256 random bits, so a token pasted into a tool argument is recognised and redacted by value
(services/audit.py), as the product's API tokens (``mcp_<prefix>_<secret>``) are.
Wired in settings: ``OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"]`` / ``["REFRESH_TOKEN_GENERATOR"]``.
"""
import secrets

OAUTH_ACCESS_PREFIX = "mcpoa_"
OAUTH_REFRESH_PREFIX = "mcpor_"
OAUTH_TOKEN_PREFIXES = (OAUTH_ACCESS_PREFIX, OAUTH_REFRESH_PREFIX)


def oauth_access_token_generate(request=None) -> str:
    """oauthlib token generator (called with the oauthlib request): ``mcpoa_`` + 43 url-safe characters."""
    return OAUTH_ACCESS_PREFIX + secrets.token_urlsafe(32)


def oauth_refresh_token_generate(request=None) -> str:
    return OAUTH_REFRESH_PREFIX + secrets.token_urlsafe(32)
