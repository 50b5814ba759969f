"""Change streams on the product: admins' changes to tools, prompts and resources reach connected clients.

Two streams, one feed (``services.live_events``, announced after commit by
``mcp_tools.change_signals``):

* **2026-07-28 ``subscriptions/listen``**: the acknowledgement, then each change the
  listen filter wants, tagged with the subscription id, and the final response.
* **Handshake era ``GET /mcp``** (with the session id): ``notifications/*/list_changed``
  and ``notifications/resources/updated`` for the URIs the session subscribed to
  (``resources/subscribe``); in a 2025-11-25 session also the status and progress of the
  tasks it started (``mcp_tasks.SessionTaskNotices``), except while a ``tasks/result`` wait
  streams them. It ends when the session ends (DELETE, on
  any worker), on a keep-alive tick that finds the session expired, or after its lifetime (its
  ``retry`` hint tells the client when to reconnect).

A change to a resource template (``docs://{slug}``) counts as an update of every subscribed
URI the template matches. Both streams end after ``MCP_LISTEN_MAX_S`` (bounding what one
client holds; reconnecting re-authenticates) or at once when the feed's subscription is
lost (changes may have been missed: reconnect and refetch, as the spec says).

Capacity: an open stream holds one gunicorn thread and no database connection. At most
``MCP_LISTEN_MAX_STREAMS`` of both kinds per process, within the caps every held stream shares
(``held_streams``); beyond them the transport answers 503 with ``Retry-After`` before streaming.
A stream notices within ``held_streams.POLL_S`` that its client left and frees its slot.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

from django.conf import settings
from django.db import connections

from ..protocol.dispatcher import ListenSubscription
from ..protocol.jsonrpc import notification_message
from ..services.live_events import (
    PROMPTS_CHANGED,
    RESOURCE_UPDATED,
    RESOURCES_CHANGED,
    TOOLS_CHANGED,
    changes_listen,
    session_stream_listen,
)
from .held_streams import POLL_S, HeldSlot
from .mcp_backend import is_template_uri, match_template_uri

KEEPALIVE_S = 15.0
RECONNECT_MS = 5000
LIST_CHANGED = frozenset({TOOLS_CHANGED, PROMPTS_CHANGED, RESOURCES_CHANGED})

def updated_uris(changed_uri: str, subscribed: Iterable[str]) -> list[str]:
    """The subscribed URIs a change to ``changed_uri`` (a URI or a template) updates."""
    if not isinstance(changed_uri, str):
        return []
    if is_template_uri(changed_uri):
        return [uri for uri in subscribed if match_template_uri(changed_uri, uri) is not None]
    return [changed_uri] if changed_uri in subscribed else []


def _changes(listener, *, lifetime_s: float, on_tick: Callable[[], bool],
             client_gone: Callable[[], bool]) -> Iterator[dict | bytes]:
    """Feed events, with a keep-alive comment (bytes) every KEEPALIVE_S; stops when ``on_tick()`` is False
    or, checked at least every POLL_S, when ``client_gone()`` is True."""
    deadline = time.monotonic() + lifetime_s
    next_tick = time.monotonic() + KEEPALIVE_S
    while not listener.lost:
        now = time.monotonic()
        if now >= deadline:
            return
        if now >= next_tick:
            if not on_tick():
                return
            yield b": keep-alive\n\n"
            next_tick = now + KEEPALIVE_S
        event = listener.next(timeout=min(deadline, next_tick, now + POLL_S) - now)
        if event is not None:
            yield event
        elif client_gone():
            return


# --- 2026-07-28: subscriptions/listen -------------------------------------------------------------

def listen_frames(subscription: ListenSubscription, frame: Callable[[dict], bytes], *, slot: HeldSlot,
                  client_gone: Callable[[], bool]) -> Iterator[bytes]:
    """The SSE body of one listen request (``frame`` turns a JSON-RPC message into an SSE event); releases
    ``slot`` when it ends."""
    try:
        connections.close_all()  # the stream may stay open for minutes: hold no database connection
        with changes_listen() as changes:
            yield frame(subscription.acknowledgement())
            subscribed = subscription.accepted.get("resourceSubscriptions") or []
            for item in _changes(changes, lifetime_s=settings.MCP_LISTEN_MAX_S, on_tick=lambda: True,
                                 client_gone=client_gone):
                if isinstance(item, bytes):
                    yield item
                    continue
                method, params = item.get("method"), item.get("params") or {}
                if method == RESOURCE_UPDATED:
                    for uri in updated_uris(params.get("uri"), subscribed):
                        yield frame(subscription.notification(method, {"uri": uri}))
                elif isinstance(method, str) and subscription.wants(method, params):
                    yield frame(subscription.notification(method, params))
        yield frame(subscription.final_response())
    finally:
        slot.release()


# --- handshake era: the session's GET stream ------------------------------------------------------

def session_stream_frames(*, slot: HeldSlot, session_id: str, subscriptions: Callable[[], list[str] | None],
                          frame: Callable[[dict], bytes], client_gone: Callable[[], bool],
                          task_notices: Callable[[dict], list[dict]] | None = None) -> Iterator[bytes]:
    """The SSE body of a session's GET. ``subscriptions()`` reads the session's subscribed URIs (None: ended);
    ``task_notices(event)`` turns an event of one of the session's tasks into the notifications to send."""

    def current() -> list[str] | None:
        try:
            return subscriptions()
        finally:
            connections.close_all()  # never hold a database connection between events

    try:
        connections.close_all()  # (close_old_connections would keep it while DB_CONN_MAX_AGE runs)
        with session_stream_listen(session_id=session_id) as events:
            yield f"retry: {RECONNECT_MS}\n\n".encode()  # when this stream ends, reconnect after this long
            for item in _changes(events, lifetime_s=settings.MCP_LISTEN_MAX_S, on_tick=lambda: current() is not None,
                                 client_gone=client_gone):
                if isinstance(item, bytes):
                    yield item
                elif item.get("type") == "session_ended":
                    return
                elif "taskId" in item:
                    for message in task_notices(item) if task_notices else ():
                        yield frame(message)
                elif item.get("method") in LIST_CHANGED:
                    yield frame(notification_message(item["method"], {}))
                elif item.get("method") == RESOURCE_UPDATED:
                    subscribed = current()
                    if subscribed is None:
                        return
                    for uri in updated_uris((item.get("params") or {}).get("uri"), subscribed):
                        yield frame(notification_message(RESOURCE_UPDATED, {"uri": uri}))
    finally:
        slot.release()
