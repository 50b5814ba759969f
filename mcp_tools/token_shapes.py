"""The shapes of the secrets this product issues, so they can be recognised (and redacted) by value.

- API tokens: ``mcp_<prefix>_<secret>`` (services/tokens.py).
- OAuth access and refresh tokens of the bundled authorization server: ``mcpoa_`` / ``mcpor_``
  followed by 256 random bits. django-oauth-toolkit's default tokens are 30 bare letters and
  digits, which nothing can tell apart from ordinary text; these generators are wired in settings
  (``OAUTH2_PROVIDER["ACCESS_TOKEN_GENERATOR"]`` / ``["REFRESH_TOKEN_GENERATOR"]``).

``TOKEN_VALUE`` matches any of them inside free text; the audit log (services/audit.py) and the
console log (log_redaction.py) replace every match. No Django here: logging imports it early.
"""
import re
import secrets

API_TOKEN_PREFIX = "mcp_"
OAUTH_ACCESS_PREFIX = "mcpoa_"
OAUTH_REFRESH_PREFIX = "mcpor_"
TOKEN_VALUE = re.compile(
    re.escape(API_TOKEN_PREFIX) + r"[a-z0-9]{8}_[A-Za-z0-9_-]{20,}"
    + "|(?:" + re.escape(OAUTH_ACCESS_PREFIX) + "|" + re.escape(OAUTH_REFRESH_PREFIX) + r")[A-Za-z0-9_-]{20,}"
)
# Every token starts with "mcp": text without it needs no regular-expression scan.
TOKEN_HINT = "mcp"


def oauth_access_token_generate(request=None) -> str:
    """oauthlib token generator (called with the oauthlib request): ``mcpoa_`` + 43 url-safe characters."""
    return OAUTH_ACCESS_PREFIX + secrets.token_urlsafe(32)


def oauth_refresh_token_generate(request=None) -> str:
    return OAUTH_REFRESH_PREFIX + secrets.token_urlsafe(32)
