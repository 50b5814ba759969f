"""Sessions of the HTTP+SSE transport (MCP 2024-11-05), kept in Redis so any worker can serve them.

A session lives exactly as long as its event stream: the worker holding the
stream creates the record, keeps refreshing its expiry while it waits for
messages, and deletes it when the stream closes. Messages for the client travel
on one pub/sub channel per session, so a POST served by another worker (or
another machine) reaches the stream. Nothing is kept in process memory.

Redis keys (prefix ``mcp:sse:``):

* ``session:<id>``  hash ``principal`` (who opened the stream), ``endpoint``,
  ``state`` (the handshake-era ``SessionState`` as JSON, once initialized); expires.
* ``channel:<id>``  pub/sub channel the stream listens on: JSON-RPC messages for the client.

A client's ``notifications/cancelled`` uses the signal every MCP transport shares
(``services.mcp_sessions.request_cancel``).
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import secrets
import time
from typing import Any

from django.conf import settings
import redis

from ..protocol import SessionState
from ..redis_client import redis_channel, redis_client

_PREFIX = "mcp:sse:"
# Store the state only while the session still exists (the stream may have closed meanwhile).
_SAVE_STATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
  return 1
end
return 0
"""


class SseUnavailable(Exception):
    """The HTTP+SSE transport needs Redis and none is configured or reachable."""


@dataclass(frozen=True)
class SseSession:
    session_id: str
    principal: str
    endpoint: str
    state: SessionState | None


def _session_key(session_id: str) -> str:
    return f"{_PREFIX}session:{session_id}"


def _channel(session_id: str) -> str:
    return redis_channel(f"{_PREFIX}channel:{session_id}")


def _client(url: str) -> redis.Redis:
    # Subscribers wait in get_message(timeout=...), which polls, so the socket timeout does not cut them short.
    return redis_client(url)


def sse_redis() -> redis.Redis:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        raise SseUnavailable(
            "The HTTP+SSE transport needs Redis (set REDIS_URL), because the event stream and the POSTed "
            "messages may be served by different worker processes. Use the Streamable HTTP endpoint /mcp instead.")
    return _client(url)


def session_ttl_s() -> int:
    """How long a session record survives without its stream refreshing it."""
    return max(30, 3 * int(settings.MCP_SSE_PING_INTERVAL_S))


def sse_session_open(*, principal: str, endpoint: str = "") -> tuple[str, redis.client.PubSub]:
    """Create a session and subscribe to its channel; return (session id, subscription).

    The subscription exists before the id is handed to the client, so no message
    posted with that id can be published before the stream listens.
    """
    client = sse_redis()
    session_id = secrets.token_hex(16)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(_channel(session_id))
    key = _session_key(session_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"principal": principal, "endpoint": endpoint, "opened": str(time.time())})
        pipe.expire(key, session_ttl_s())
        pipe.execute()
    return session_id, pubsub


def sse_session_get(*, session_id: str) -> SseSession | None:
    if not session_id or len(session_id) > 64 or not session_id.isalnum():
        return None
    data = sse_redis().hgetall(_session_key(session_id))
    if not data:
        return None
    data = {k.decode(): v.decode() for k, v in data.items()}
    state = SessionState.from_dict(json.loads(data["state"])) if data.get("state") else None
    return SseSession(session_id=session_id, principal=data.get("principal", ""),
                      endpoint=data.get("endpoint", ""), state=state)


def sse_session_save_state(*, session_id: str, state: SessionState) -> bool:
    """Store the handshake state; False when the session ended meanwhile."""
    client = sse_redis()
    return bool(client.eval(_SAVE_STATE, 1, _session_key(session_id), json.dumps(state.to_dict())))


def sse_session_touch(*, session_id: str) -> bool:
    """Extend the session's life; False when it no longer exists (closed elsewhere)."""
    return bool(sse_redis().expire(_session_key(session_id), session_ttl_s()))


def sse_session_close(*, session_id: str, pubsub: redis.client.PubSub | None = None) -> None:
    try:
        if pubsub is not None:
            pubsub.close()
    finally:
        sse_redis().delete(_session_key(session_id))


def sse_session_is_listening(*, session_id: str) -> bool:
    """True while a stream is subscribed to the session's channel (on any worker)."""
    counts = sse_redis().pubsub_numsub(_channel(session_id))
    return bool(counts and counts[0][1] > 0)


def sse_session_send(*, session_id: str, message: dict[str, Any]) -> bool:
    """Publish one JSON-RPC message for the client; False when no stream received it."""
    return sse_redis().publish(_channel(session_id), json.dumps(message, separators=(",", ":"))) > 0
