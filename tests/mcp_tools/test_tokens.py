from datetime import timedelta
import hashlib

from django.test import override_settings
from django.utils import timezone
import pytest

from mcp_tools.exceptions import AuthenticationFailed, NotPermitted
from mcp_tools.models import ApiToken
from mcp_tools.services.tokens import token_authenticate, token_issue, token_revoke

pytestmark = pytest.mark.django_db


def test_issued_secret_authenticates_and_is_not_stored():
    issued = token_issue(name="agent")
    assert issued.secret.startswith(f"mcp_{issued.token.prefix}_")
    row = ApiToken.objects.filter(pk=issued.token.pk).values().get()
    secret_part = issued.secret.split("_", 2)[2]
    assert all(secret_part not in str(value) for value in row.values())
    assert row["secret_hash"] != hashlib.sha256(secret_part.encode()).hexdigest()  # salted and peppered
    assert token_authenticate(raw=issued.secret) == issued.token


def test_two_tokens_get_different_salts_and_prefixes():
    first, second = token_issue(name="a").token, token_issue(name="b").token
    assert first.salt != second.salt and first.prefix != second.prefix


def test_a_changed_secret_fails():
    issued = token_issue(name="agent")
    tampered = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationFailed, match="Invalid API token"):
        token_authenticate(raw=tampered)


def test_the_pepper_is_part_of_the_hash():
    issued = token_issue(name="agent")
    with override_settings(MCP_TOKEN_PEPPER="another-pepper-value"), pytest.raises(AuthenticationFailed):
        token_authenticate(raw=issued.secret)


@pytest.mark.parametrize("raw", ["", "mcp_", "mcp_short_x", "Bearer x", "mcp_abcdefgh" + "_" * 30])
def test_malformed_tokens_are_refused(raw):
    with pytest.raises(AuthenticationFailed):
        token_authenticate(raw=raw)


def test_expired_and_revoked_tokens_are_refused():
    expired = token_issue(name="old", expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        token_authenticate(raw=expired.secret)
    revoked = token_issue(name="gone")
    token_revoke(token=revoked.token)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        token_authenticate(raw=revoked.secret)


def test_allowed_ip_ranges():
    issued = token_issue(name="office", allowed_ips=["192.0.2.0/24", "2001:db8::/32"])
    assert token_authenticate(raw=issued.secret, client_ip="192.0.2.7") == issued.token
    assert token_authenticate(raw=issued.secret, client_ip="2001:db8::1") == issued.token
    with pytest.raises(NotPermitted):
        token_authenticate(raw=issued.secret, client_ip="198.51.100.1")


def test_last_used_is_written_at_most_once_a_minute(django_assert_max_num_queries):
    issued = token_issue(name="agent")
    token_authenticate(raw=issued.secret)
    first = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert first is not None
    with django_assert_max_num_queries(1):  # at most the lookup (none when cached), no UPDATE
        token_authenticate(raw=issued.secret)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == first


def _wrong_secret(prefix: str) -> str:
    return f"mcp_{prefix}_{'x' * 43}"


def test_a_miss_is_cached_like_a_hit_so_both_paths_cost_the_same(django_assert_num_queries):
    known = token_issue(name="agent").token.prefix
    unknown = "zz" + known[2:] if not known.startswith("zz") else "yy" + known[2:]
    for prefix in (known, unknown):  # first sight of each prefix reads the database once
        with pytest.raises(AuthenticationFailed, match="Invalid API token"):
            token_authenticate(raw=_wrong_secret(prefix))
    for prefix in (known, unknown):  # from then on neither does: a miss gives no timing signal
        with django_assert_num_queries(0), pytest.raises(AuthenticationFailed, match="Invalid API token"):
            token_authenticate(raw=_wrong_secret(prefix))


def test_both_paths_hash_the_secret_and_compare_in_constant_time(monkeypatch):
    from mcp_tools.services import tokens

    compared = []
    real = tokens.hmac.compare_digest
    monkeypatch.setattr(tokens.hmac, "compare_digest", lambda a, b: compared.append((len(a), len(b))) or real(a, b))
    known = token_issue(name="agent").token.prefix
    for prefix in (known, "q" * 8):
        with pytest.raises(AuthenticationFailed):
            token_authenticate(raw=_wrong_secret(prefix))
    assert compared == [(64, 64), (64, 64)]


def test_a_cached_miss_is_forgotten_when_a_token_with_that_prefix_appears():
    with pytest.raises(AuthenticationFailed):
        token_authenticate(raw=_wrong_secret("p" * 8))
    issued = token_issue(name="agent")
    secret_part = issued.secret.split("_", 2)[2]
    ApiToken.objects.filter(pk=issued.token.pk).update(prefix="p" * 8)
    assert token_authenticate(raw=f"mcp_{'p' * 8}_{secret_part}").pk == issued.token.pk
