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
# Case-insensitive, and "_" may be percent-encoded: a pasted token is still a token in upper case or in a URL.
_SEP = r"(?:_|%5f)"
TOKEN_VALUE = re.compile(
    r"mcp" + _SEP + r"[a-z0-9]{8}" + _SEP + r"(?:[a-z0-9-]|" + _SEP + r"){20,}"
    + r"|mcpo[ar]" + _SEP + r"(?:[a-z0-9-]|" + _SEP + r"){20,}",
    re.IGNORECASE,
)
# Every token starts with "mcp" in some letter case: text without it needs no regular-expression scan.
TOKEN_HINT = "mcp"


def token_hint_in(text: str) -> bool:
    """Cheap pre-check: could ``text`` hold a token value at all?"""
    return TOKEN_HINT in text.lower()


def oauth_access_token_generate(request=None) -> str:
    """oauthlib token generator (called with the oauthlib request): ``mcpoa_`` + 43 url-safe characters."""
    return OAUTH_ACCESS_PREFIX + secrets.token_urlsafe(32)


def oauth_refresh_token_generate(request=None) -> str:
    return OAUTH_REFRESH_PREFIX + secrets.token_urlsafe(32)
