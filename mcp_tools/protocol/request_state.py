"""Signed ``requestState`` for 2026-07-28 multi-round-trip (input_required) requests.

The server keeps nothing between rounds: whatever a handler needs on the next
round travels to the client inside ``requestState`` and comes back verbatim.
It is HMAC-signed, bound to the method and target (tool/prompt name or
resource URI) it was issued for, and expires, so a client can neither forge
it, edit it, nor replay it against another tool.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .jsonrpc import INVALID_PARAMS, ProtocolError
from .signing import InvalidToken, seal, unseal

_PURPOSE = "requestState"
DEFAULT_TTL_S = 15 * 60


@dataclass(frozen=True)
class VerifiedState:
    data: dict[str, Any]
    round: int
    pending: tuple[str, ...]  # inputRequests keys issued in the previous round


def sign_request_state(data: dict[str, Any], *, key: bytes, method: str, target: str | None,
                       round: int = 1, pending: tuple[str, ...] = (), ttl_s: float = DEFAULT_TTL_S,
                       now: float | None = None) -> str:
    payload = {"m": method, "t": target, "r": round, "k": list(pending), "d": data}
    return seal(payload, key=key, purpose=_PURPOSE, ttl_s=ttl_s, now=now)


def verify_request_state(token: Any, *, key: bytes, method: str, target: str | None,
                         now: float | None = None) -> VerifiedState:
    """Return the state or raise ProtocolError(-32602) on any integrity failure."""
    try:
        payload = unseal(token, key=key, purpose=_PURPOSE, now=now)
    except InvalidToken as exc:
        raise ProtocolError(INVALID_PARAMS, f"Invalid params: requestState rejected ({exc})") from None
    if payload.get("m") != method or payload.get("t") != target:
        raise ProtocolError(INVALID_PARAMS, "Invalid params: requestState was issued for another request")
    data = payload.get("d")
    rnd = payload.get("r")
    pending = payload.get("k")
    if not isinstance(data, dict) or not isinstance(rnd, int) or not isinstance(pending, list):
        raise ProtocolError(INVALID_PARAMS, "Invalid params: requestState rejected (malformed)")
    return VerifiedState(data=data, round=rnd, pending=tuple(str(k) for k in pending))
