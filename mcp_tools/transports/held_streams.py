"""Held streams: how many a process and a token may keep open, and noticing at once when a client leaves.

Three kinds of response stay open while idle: the HTTP+SSE event stream (``GET /mcp/sse``), a
handshake session's ``GET /mcp`` stream, and a 2026-07-28 ``subscriptions/listen``. Under gunicorn's
gthread worker each one holds a request thread for as long as it is open, so their number must stay
below the thread count or ordinary calls and ``/health`` queue behind them (21 idle streams from one
token hung a 2 x 16-thread server). The budget of one process:

    held streams  <=  threads - MCP_STREAM_WORKERS (streaming calls) - MCP_THREAD_RESERVE

``MCP_HELD_STREAMS_MAX`` may only lower it; ``MCP_HELD_STREAMS_PER_TOKEN`` bounds one principal
(token, OAuth user and client, or anonymous) within the process. A stream beyond either answers
503 with ``Retry-After`` (``StreamCapReached``), before anything is streamed.

A client that goes away is noticed by ``connection_watcher``: the stream loops wake at least every
``POLL_S`` seconds and peek at the client's socket (gunicorn puts it in ``environ["gunicorn.socket"]``),
so the slot, the Redis subscription and the thread are free again within a second instead of at the
next keep-alive write (up to 15 s later).
"""
from __future__ import annotations

import logging
import select
import socket
import threading
from typing import Callable

from django.conf import settings

from ..exceptions import StreamCapReached

logger = logging.getLogger("mcp_tools.transports")

# How often an idle stream checks that its client is still there (seconds).
POLL_S = 0.5
RETRY_AFTER_S = 5

_lock = threading.Lock()
_open_total = 0
_open_by_principal: dict[str, int] = {}
_open_by_kind: dict[str, int] = {}
# Change streams (a session's GET /mcp and subscriptions/listen) also share MCP_LISTEN_MAX_STREAMS.
CHANGE_STREAM_KINDS = frozenset({"get", "listen"})
_threads: int | None = None  # the server's threads per process, when known (gunicorn.conf.py sets it)


def held_streams_configure(*, threads: int) -> None:
    """Tell the budget how many request threads this process has (called once per gunicorn worker)."""
    global _threads
    _threads = threads
    cap = process_cap()
    logger.info("Held streams: at most %d per process, %d per token (%d threads, %d for streaming calls, "
                "%d reserved)", cap, token_cap(), threads, settings.MCP_STREAM_WORKERS, settings.MCP_THREAD_RESERVE)


def process_cap() -> int:
    """Held streams this process accepts: the setting, lowered to what its threads can afford."""
    cap = settings.MCP_HELD_STREAMS_MAX
    if _threads is not None:
        cap = min(cap, max(0, _threads - settings.MCP_STREAM_WORKERS - settings.MCP_THREAD_RESERVE))
    return cap


def token_cap() -> int:
    return min(settings.MCP_HELD_STREAMS_PER_TOKEN, process_cap())


class HeldSlot:
    """One open stream counted against the caps; ``release`` is idempotent (closers may run twice)."""

    def __init__(self, principal: str, kind: str) -> None:
        self.principal, self.kind = principal, kind
        self._held = True

    def release(self) -> None:
        global _open_total
        with _lock:
            if not self._held:
                return
            self._held = False
            _open_total -= 1
            _open_by_kind[self.kind] = _open_by_kind.get(self.kind, 1) - 1
            left = _open_by_principal.get(self.principal, 1) - 1
            if left > 0:
                _open_by_principal[self.principal] = left
            else:
                _open_by_principal.pop(self.principal, None)


def held_stream_acquire(*, kind: str, principal: str) -> HeldSlot:
    """Count one more open stream of ``kind`` for ``principal``, or raise StreamCapReached."""
    global _open_total
    with _lock:
        if _open_total >= process_cap():
            raise StreamCapReached(
                f"Server busy: this server process holds its maximum of open streams ({process_cap()}); "
                f"retry in {RETRY_AFTER_S} s.", retry_after_s=RETRY_AFTER_S, scope="process", kind=kind)
        if kind in CHANGE_STREAM_KINDS and sum(_open_by_kind.get(k, 0) for k in CHANGE_STREAM_KINDS) \
                >= settings.MCP_LISTEN_MAX_STREAMS:
            raise StreamCapReached(
                f"Server busy: this server process holds its maximum of change streams "
                f"({settings.MCP_LISTEN_MAX_STREAMS}); retry in {RETRY_AFTER_S} s.",
                retry_after_s=RETRY_AFTER_S, scope="process", kind=kind)
        mine = _open_by_principal.get(principal, 0)
        if mine >= token_cap():
            raise StreamCapReached(
                f"Too many open streams for this credential ({token_cap()} per server process); close one "
                f"or retry in {RETRY_AFTER_S} s.", retry_after_s=RETRY_AFTER_S, scope="token", kind=kind)
        _open_total += 1
        _open_by_principal[principal] = mine + 1
        _open_by_kind[kind] = _open_by_kind.get(kind, 0) + 1
    return HeldSlot(principal, kind)


def held_streams_open() -> int:
    return _open_total


def connection_watcher(environ) -> Callable[[], bool]:
    """A check that is True once the client closed its connection (False when the server gives no socket).

    The client sends nothing more on a stream's connection, so a readable socket with no bytes to
    peek is a closed one. ``poll`` (not ``select``) works for descriptors above 1024.
    """
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False
    poller = select.poll()
    try:
        poller.register(sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
    except (OSError, ValueError):
        return lambda: False

    def gone() -> bool:
        try:
            events = poller.poll(0)
            if not events:
                return False
            if any(flag & (select.POLLHUP | select.POLLERR) for _, flag in events):
                return True
            # Peek below any TLS layer: zero bytes means the peer closed the connection.
            return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    return gone
