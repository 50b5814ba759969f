"""``subscriptions/listen`` (2026-07-28) on the product: a long-lived SSE stream of admins' changes.

The protocol layer decides what a listen request may subscribe to (the stateless-era
capabilities this module declares) and shapes every message; this module keeps the stream:
the acknowledgement, then each change from the feed (``services.live_events``) the filter
wants, tagged with the subscription id, and keep-alive comments. The stream ends with the
final response after ``MCP_LISTEN_MAX_S`` (the client listens again: this bounds what one
client holds, and re-checks its credential) or at once if the feed's subscription was lost
(changes may have been missed: the spec's answer is to listen again and refetch).

Capacity: an open stream holds one gunicorn thread (no database connection). At most
``MCP_LISTEN_MAX_STREAMS`` per process; beyond that a listen is acknowledged and closed at
once, which a client treats like any graceful end.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from django.conf import settings
from django.db import close_old_connections

from ..protocol import Era
from ..protocol.dispatcher import Dispatcher, ListenSubscription
from ..services.live_events import changes_listen

# What the feed can deliver; declared for the stateless era only (the handshake era would need the
# GET stream, which this server does not offer, so it does not promise these notifications there).
CHANGE_CAPABILITIES = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"listChanged": True, "subscribe": True},
}
KEEPALIVE_S = 15.0

_open = 0
_open_lock = threading.Lock()


def install_change_feed(dispatcher: Dispatcher) -> Dispatcher:
    stateless = dispatcher.era_capabilities.setdefault(Era.STATELESS, {})
    for name, value in CHANGE_CAPABILITIES.items():
        stateless[name] = {**stateless.get(name, {}), **value}
    return dispatcher


def _reserve() -> bool:
    global _open
    with _open_lock:
        if _open >= settings.MCP_LISTEN_MAX_STREAMS:
            return False
        _open += 1
        return True


def _release() -> None:
    global _open
    with _open_lock:
        _open -= 1


def listen_frames(subscription: ListenSubscription, frame: Callable[[dict], bytes]) -> Iterator[bytes]:
    """The SSE body of one listen request (``frame`` turns a JSON-RPC message into an SSE event)."""
    if not _reserve():
        yield frame(subscription.acknowledgement())
        yield frame(subscription.final_response())
        return
    try:
        close_old_connections()  # the stream may stay open for minutes: hold no database connection
        with changes_listen() as changes:
            yield frame(subscription.acknowledgement())
            deadline = time.monotonic() + settings.MCP_LISTEN_MAX_S
            next_ping = time.monotonic() + KEEPALIVE_S
            while not changes.lost:
                now = time.monotonic()
                if now >= deadline:
                    break
                if now >= next_ping:
                    yield b": keep-alive\n\n"
                    next_ping = now + KEEPALIVE_S
                change = changes.next(timeout=min(deadline, next_ping) - now)
                if change is None:
                    continue
                method, params = change.get("method"), change.get("params") or {}
                if isinstance(method, str) and subscription.wants(method, params):
                    yield frame(subscription.notification(method, params))
        yield frame(subscription.final_response())
    finally:
        _release()
