"""Issue, verify and revoke API tokens.

A token reads ``mcp_<prefix>_<secret>``. The prefix (8 chars) finds the row and is
safe to show; the secret is 256 random bits, stored only as an HMAC-SHA256 of a
per-token salt and the secret keyed with a server-side pepper. A slow password
hash buys nothing for secrets of that entropy and would cost every request.
"""
from dataclasses import dataclass
from datetime import timedelta
import hashlib
import hmac
import ipaddress
import re
import secrets
import string

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..exceptions import AuthenticationFailed, NotPermitted
from ..models import ApiToken
from ..token_shapes import API_TOKEN_PREFIX
from .lookup_cache import TOKENS, cached_entry_update, cached_lookup, lookup_cache_bump

TOKEN_PREFIX = API_TOKEN_PREFIX
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_LEN = 8
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the full token string; shown once, never stored


def _hash(secret: str, salt: str) -> str:
    pepper = settings.MCP_TOKEN_PEPPER.encode()
    return hmac.new(pepper, (salt + secret).encode(), hashlib.sha256).hexdigest()


_SHOWN_PREFIX = re.compile(r"[a-z0-9]{8}")


def token_prefix_of(raw: str | None) -> str:
    """The public prefix of a well-formed ``mcp_<prefix>_<secret>`` string, else ''. Never the secret."""
    parts = _split((raw or "").strip())
    return parts[0] if parts and _SHOWN_PREFIX.fullmatch(parts[0]) else ""


def _split(raw: str) -> tuple[str, str] | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    rest = raw[len(TOKEN_PREFIX):]
    prefix, sep, secret = rest.partition("_")
    if sep != "_" or len(prefix) != _PREFIX_LEN or len(secret) < 20:
        return None
    return prefix, secret


def token_issue(*, name: str, owner=None, all_tools: bool = False, tools=(), expires_at=None,
                allowed_ips=(), scopes=(), rate_limit: str = "") -> IssuedToken:
    """Create a token row and return it with its one-time secret."""
    token = ApiToken(
        name=name, owner=owner, all_tools=all_tools, expires_at=expires_at,
        allowed_ips=list(allowed_ips), scopes=list(scopes), rate_limit=rate_limit,
    )
    with transaction.atomic():
        secret = token_assign_secret(token=token)
        token.save()
        if tools:
            token.allowed_tools.set(tools)
    return IssuedToken(token=token, secret=secret)


def token_assign_secret(*, token: ApiToken) -> str:
    """Give an unsaved token its prefix, salt and hash; return the full secret string."""
    secret = secrets.token_urlsafe(32)
    token.salt = secrets.token_hex(16)
    token.secret_hash = _hash(secret, token.salt)
    while True:
        token.prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LEN))
        if not ApiToken.objects.filter(prefix=token.prefix).exists():
            break
    return f"{TOKEN_PREFIX}{token.prefix}_{secret}"


def token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    lookup_cache_bump(TOKENS)
    token.refresh_from_db(fields=["revoked_at"])


def ip_allowed(token: ApiToken, client_ip: str | None) -> bool:
    if not token.allowed_ips:
        return True
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in token.allowed_ips)


class _NoToken:
    """A cached "no token has this prefix": misses are cached like hits, so both cost the same."""


_DUMMY_SALT = "dummy-salt"


def _token_row(prefix: str) -> ApiToken | _NoToken:
    token = ApiToken.objects.filter(prefix=prefix).first()
    if token is None:
        return _NoToken()  # invalidated like every entry: issuing a token bumps the generation
    allowed_tool_ids(token)  # cached with the row; grants changes invalidate it (m2m_changed)
    return token


_dummy_hashes: dict[str, str] = {}


def _dummy_hash() -> str:
    """What a miss compares against; computed once per pepper, as a hit's hash is read, not computed."""
    pepper = settings.MCP_TOKEN_PEPPER
    if pepper not in _dummy_hashes:
        _dummy_hashes[pepper] = _hash("dummy-secret", _DUMMY_SALT)
    return _dummy_hashes[pepper]


def token_authenticate(*, raw: str, client_ip: str | None = None) -> ApiToken:
    """Return the live token for ``raw`` or raise AuthenticationFailed / NotPermitted."""
    parts = _split(raw.strip())
    if parts is None:
        raise AuthenticationFailed("Malformed API token: expected the 'mcp_…' value shown when it was issued.",
                                   reason="token_malformed")
    prefix, secret = parts
    # The row, or the fact that there is none, may come from this process's cache (invalidated on
    # every change, see lookup_cache), so a known and an unknown prefix take the same path; the
    # secret is hashed and compared in constant time on every request, against a dummy hash when no
    # row matched, so timing does not reveal valid prefixes.
    found = cached_lookup(kind=TOKENS, key=prefix, load=lambda: _token_row(prefix))
    token = found if isinstance(found, ApiToken) else None
    salt, expected = (token.salt, token.secret_hash) if token is not None else (_DUMMY_SALT, _dummy_hash())
    if not hmac.compare_digest(_hash(secret, salt), expected) or token is None:
        # The client hears the same words either way (no oracle for valid prefixes); the admin learns which.
        raise AuthenticationFailed("Invalid API token.",
                                   reason="token_unknown" if token is None else "token_wrong_secret")
    now = timezone.now()
    if token.revoked_at is not None:
        raise AuthenticationFailed("This API token has been revoked. Ask an administrator for a new one.",
                                   reason="token_revoked")
    if token.is_expired(now):
        raise AuthenticationFailed(
            f"This API token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC. Ask an administrator for a new one.",
            reason="token_expired")
    if not ip_allowed(token, client_ip):
        raise NotPermitted(f"This API token may not be used from {client_ip}.")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Not a change callers see: no cache invalidation, but this process's cached row learns it.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        cached_entry_update(kind=TOKENS, key=prefix, last_used_at=now)
    return token


def token_may_use(token: ApiToken | None, tool) -> bool:
    if token is None:
        return False
    if token.all_tools:
        return True
    return tool.pk in allowed_tool_ids(token)


def allowed_tool_ids(token: ApiToken) -> set[int]:
    cached = getattr(token, "_allowed_tool_ids", None)
    if cached is None:
        cached = set(token.allowed_tools.values_list("pk", flat=True))
        token._allowed_tool_ids = cached
    return cached
