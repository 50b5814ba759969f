"""Compact HMAC-SHA256 sealed tokens (payload is readable, not secret; tampering is detected).

Used for pagination cursors and 2026-07-28 ``requestState``. Format:
``v1.<base64url(json payload)>.<base64url(hmac)>``. The payload holds a
``purpose`` so a cursor can never be replayed as a request state, and an
optional ``exp`` (unix seconds).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

_PREFIX = "v1"


class InvalidToken(ValueError):
    """The token is malformed, forged, expired or meant for another purpose."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def seal(payload: dict[str, Any], *, key: bytes, purpose: str, ttl_s: float | None = None,
         now: float | None = None) -> str:
    if not key:
        raise ValueError("a non-empty signing key is required")
    body: dict[str, Any] = {"p": purpose, "d": payload}
    if ttl_s is not None:
        body["exp"] = int((time.time() if now is None else now) + ttl_s)
    encoded = _b64e(json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    signed = f"{_PREFIX}.{encoded}"
    return f"{signed}.{_b64e(_mac(key, signed))}"


def unseal(token: Any, *, key: bytes, purpose: str, now: float | None = None) -> dict[str, Any]:
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidToken("malformed token")
    prefix, encoded, sig = token.split(".")
    if prefix != _PREFIX:
        raise InvalidToken("unknown token version")
    try:
        given = _b64d(sig)
    except (ValueError, TypeError):
        raise InvalidToken("malformed signature") from None
    if not hmac.compare_digest(given, _mac(key, f"{prefix}.{encoded}")):
        raise InvalidToken("signature mismatch")
    try:
        body = json.loads(_b64d(encoded))
    except (ValueError, TypeError):
        raise InvalidToken("malformed payload") from None
    if not isinstance(body, dict) or body.get("p") != purpose or not isinstance(body.get("d"), dict):
        raise InvalidToken("token was issued for another purpose")
    exp = body.get("exp")
    if exp is not None and (time.time() if now is None else now) > exp:
        raise InvalidToken("token expired")
    return body["d"]
