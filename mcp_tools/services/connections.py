"""Who tried to connect, who was refused and why: the data behind the admin's Connections page.

Two records, both written off the request path:

- ``connection_refusal_record``: a request refused or failed before any tool ran. Only a
  reason code (a key of ``REASONS``, which holds the plain words and the client-side fix),
  the transport, path, address, token prefix and client name/version are kept: never a
  secret, never a body.
- ``connection_seen``: a client that connected successfully (one row per credential,
  client name and transport; refreshed at most once per ``SEEN_RESOLUTION`` per process).

Both only touch an in-process buffer (a dict under a lock, a few microseconds). Identical
refusals in one flush window fold into one row with a count, so a flood of refused requests
costs one INSERT per window, not one per request, and the buffer is capped
(``MAX_PENDING`` distinct keys; beyond it refusals are counted in the log and dropped).
``connection_log_flush`` writes the buffer in bulk; it runs on one daemon thread per process
every ``MCP_CONNECTION_LOG_FLUSH_MS`` milliseconds, or, when that is 0, at the end of each
request (after the response went out; see ``apps.py``). Each flush also deletes rows older
than ``MCP_CONNECTION_LOG_RETENTION_DAYS`` at most every ``PRUNE_EVERY``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import os
import re
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from ..models import ClientConnection, ConnectionRefusal

logger = logging.getLogger("mcp_tools.connections")

SEEN_RESOLUTION = 60.0  # seconds between two updates of one connected client's row, per process
MAX_PENDING = 1000
MAX_SEEN_KEYS = 10_000
PRUNE_EVERY = 600.0  # seconds


@dataclass(frozen=True)
class Reason:
    words: str  # what happened, in plain words
    fix: str  # what to change on the client side


# The one table of refusal reasons. Transports and the pipeline name a key; the admin shows the rest.
REASONS: dict[str, Reason] = {
    "no_credential": Reason(
        "The request carried no credential.",
        "Send 'Authorization: Bearer mcp_…' (or the API-key header) with every request, the GET stream included."),
    "credential_unusable": Reason(
        "The Authorization header is not a Bearer credential.",
        "Write the header as 'Authorization: Bearer <token>' (the word Bearer, one space, the token)."),
    "token_malformed": Reason(
        "The token is not in the 'mcp_<prefix>_<secret>' form.",
        "Paste the whole token exactly as it was shown when it was created; it was probably cut or wrapped."),
    "token_unknown": Reason(
        "No token has this prefix (it was deleted, or belongs to another server).",
        "Check the client points at the right server, or ask an administrator for a new token."),
    "token_wrong_secret": Reason(
        "The token prefix exists but the secret after it is wrong.",
        "Copy the full token again; the part after the second '_' differs from the one issued."),
    "token_revoked": Reason(
        "The token was revoked by an administrator.",
        "Ask an administrator for a new token and replace it in the client's configuration."),
    "token_expired": Reason(
        "The token has expired.",
        "Ask an administrator for a new token (or to extend this one) and update the client."),
    "token_ip_not_allowed": Reason(
        "The token may not be used from this address (its allowed IPs).",
        "Call from an allowed address, or ask an administrator to add this address to the token's allowed IPs."),
    "ip_not_allowed": Reason(
        "This address is outside the server's MCP_ALLOWED_IPS.",
        "Connect from an allowed network (VPN, office), or ask the operator to add the range to MCP_ALLOWED_IPS."),
    "oauth_token_invalid": Reason(
        "The OAuth access token is invalid or expired.",
        "Let the client refresh its access token or sign in again."),
    "oauth_audience": Reason(
        "The OAuth access token was issued for another resource (RFC 8707 audience).",
        "Request the token with resource=<this server's /mcp URL> (the 'resource' in the protected resource "
        "metadata)."),
    "oauth_scope": Reason(
        "The OAuth access token lacks the scope this tool needs.",
        "Request the scope named in the WWW-Authenticate header (e.g. mcp:tools or tool:<name>) and retry."),
    "origin_refused": Reason(
        "The Origin header names a site that is not on MCP_ALLOWED_ORIGINS.",
        "Browser clients: serve the client from an allowed origin, or ask the operator to add it to "
        "MCP_ALLOWED_ORIGINS. Non-browser clients should not send Origin at all."),
    "host_refused": Reason(
        "The Host header is not one of this server's names (ALLOWED_HOSTS).",
        "Use the server's public host name in the URL (not an IP or alias), or ask the operator to add it to "
        "ALLOWED_HOSTS."),
    "not_acceptable": Reason(
        "The Accept header allows neither application/json nor text/event-stream.",
        "Send 'Accept: application/json, text/event-stream' on POST (and text/event-stream on the GET stream)."),
    "wrong_content_type": Reason(
        "The body was not sent as application/json.",
        "Send JSON-RPC with 'Content-Type: application/json'."),
    "body_too_large": Reason(
        "The request body is larger than MCP_MAX_BODY_BYTES.",
        "Send smaller arguments (upload large data elsewhere and pass a reference), or ask the operator to raise "
        "MCP_MAX_BODY_BYTES."),
    "malformed_message": Reason(
        "The body is not a valid JSON-RPC message (bad JSON, nesting too deep, or a missing field).",
        "Send one JSON-RPC 2.0 object per POST: {\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": …}."),
    "unsupported_protocol_version": Reason(
        "The client asked for a protocol version this server does not speak.",
        "Use 2026-07-28 or one of 2025-11-25, 2025-06-18, 2025-03-26 (update the client or its SDK)."),
    "header_mismatch": Reason(
        "2026-07-28: the MCP-Protocol-Version, Mcp-Method or Mcp-Name header disagrees with the body.",
        "Send the headers with the same values as the body's _meta protocolVersion, method and params.name/uri "
        "(an SDK does this for you; a proxy may be rewriting them)."),
    "session_required": Reason(
        "A request that needs a session came without an Mcp-Session-Id (or before initialize).",
        "Send initialize first, then the Mcp-Session-Id it returned on every later request."),
    "session_unknown": Reason(
        "The Mcp-Session-Id (or HTTP+SSE session_id) is unknown: the session ended, expired or was opened "
        "with another token.",
        "Start a new session (initialize again, or reopen the SSE stream) and stop reusing the old id."),
    "unknown_endpoint": Reason(
        "No enabled MCP endpoint has this path.",
        "Check the URL: /mcp, or /mcp/<slug> for an endpoint an administrator created and enabled."),
    "rate_limited": Reason(
        "The caller or the tool exceeded its rate limit.",
        "Wait for the Retry-After time, call less often, or ask an administrator for a higher limit."),
    "stream_cap": Reason(
        "Every streaming slot of the server was busy.",
        "Retry after a moment; keep fewer streams open at once (close idle GET streams), or ask the operator to "
        "raise MCP_STREAM_WORKERS / MCP_LISTEN_MAX_STREAMS."),
}


def reason_words(code: str) -> str:
    return REASONS[code].words if code in REASONS else code


def reason_fix(code: str) -> str:
    return REASONS[code].fix if code in REASONS else ""


_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _clip(value, limit: int) -> str:
    """A client-supplied value as a column can hold it: at most ``limit`` characters, with NUL, other
    control characters and lone surrogates (which Postgres text refuses) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", str(value or "")[:limit])


class _Buffer:
    """Pending rows of this process; swapped out whole by each flush."""

    def __init__(self):
        self.lock = threading.Lock()
        self.refusals: dict[tuple, list] = {}
        self.seen: dict[tuple, dict] = {}
        self.seen_written: dict[tuple, float] = {}  # key -> monotonic time of the last buffered update
        self.dropped = 0
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None
        self.last_prune = 0.0


_buffer = _Buffer()


def _current() -> _Buffer:
    global _buffer
    if _buffer.pid != os.getpid():  # forked (gunicorn worker): the parent's buffer and thread are not ours
        _buffer = _Buffer()
    return _buffer


def connection_refusal_record(*, reason: str, transport: str, path: str = "", method: str = "",
                              client_ip: str | None = None, token_prefix: str = "", client_name: str = "",
                              client_version: str = "", http_status: int = 0, detail: str = "") -> None:
    """Note one refused request (buffered; see the module docstring). ``reason`` must be a key of REASONS.

    ``detail`` is the message the client was sent; callers never pass secrets or bodies.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}")
    now = timezone.now()
    key = (reason, _clip(transport, 24), _clip(path, 200), _clip(method, 8), client_ip or None,
           _clip(token_prefix, 40), _clip(client_name, 100), _clip(client_version, 40), int(http_status))
    buffer = _current()
    with buffer.lock:
        entry = buffer.refusals.get(key)
        if entry is not None:
            entry[1] = now
            entry[2] += 1
        elif len(buffer.refusals) < MAX_PENDING:
            buffer.refusals[key] = [now, now, 1, _clip(detail, 300)]
        else:
            buffer.dropped += 1
    _ensure_flusher(buffer)


def connection_seen(*, credential: str, client_name: str, transport: str, client_version: str = "",
                    protocol_version: str = "", client_ip: str | None = None) -> None:
    """Note a client that connected successfully; at most one buffered update per key and SEEN_RESOLUTION."""
    key = (_clip(credential, 40), _clip(client_name, 100), _clip(transport, 24))
    buffer = _current()
    moment = time.monotonic()
    last = buffer.seen_written.get(key)
    if last is not None and moment - last < SEEN_RESOLUTION:
        return
    with buffer.lock:
        if len(buffer.seen_written) >= MAX_SEEN_KEYS:  # bounded memory even if clients invent names
            buffer.seen_written.clear()
        buffer.seen_written[key] = moment
        buffer.seen[key] = {"client_version": _clip(client_version, 40),
                            "protocol_version": _clip(protocol_version, 16), "client_ip": client_ip or None,
                            "last_seen": timezone.now()}
    _ensure_flusher(buffer)


def connection_log_flush() -> int:
    """Write this process's pending rows in bulk; returns how many rows were written.

    Database errors are logged and the batch is dropped: losing a diagnostic row never
    fails or slows a request.
    """
    buffer = _current()
    with buffer.lock:
        refusals, buffer.refusals = buffer.refusals, {}
        seen, buffer.seen = buffer.seen, {}
        dropped, buffer.dropped = buffer.dropped, 0
    if dropped:
        logger.warning("Connections log: %d refusals dropped (more than %d distinct ones pending)",
                       dropped, MAX_PENDING)
    if not refusals and not seen:
        return 0
    rows = [ConnectionRefusal(reason=k[0], transport=k[1], path=k[2], method=k[3], client_ip=k[4],
                              token_prefix=k[5], client_name=k[6], client_version=k[7], http_status=k[8],
                              first_at=v[0], last_at=v[1], count=v[2], detail=v[3])
            for k, v in refusals.items()]
    clients = [ClientConnection(credential=k[0], client_name=k[1], transport=k[2], first_seen=v["last_seen"], **v)
               for k, v in seen.items()]
    try:
        with transaction.atomic():
            ConnectionRefusal.objects.bulk_create(rows)
            ClientConnection.objects.bulk_create(
                clients, update_conflicts=True, unique_fields=["credential", "client_name", "transport"],
                update_fields=["client_version", "protocol_version", "client_ip", "last_seen"])
    except DatabaseError as exc:
        logger.warning("Connections log: could not write %d rows: %s", len(rows) + len(clients), exc)
        return 0
    return len(rows) + len(clients)


def connection_log_prune(*, now: datetime | None = None) -> int:
    """Delete rows older than MCP_CONNECTION_LOG_RETENTION_DAYS; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MCP_CONNECTION_LOG_RETENTION_DAYS)
    refused, _ = ConnectionRefusal.objects.filter(last_at__lt=cutoff).delete()
    seen, _ = ClientConnection.objects.filter(last_seen__lt=cutoff).delete()
    return refused + seen


def connection_log_flush_at_request_end(**_kwargs) -> None:
    """``request_finished`` receiver used when MCP_CONNECTION_LOG_FLUSH_MS is 0 (tests, tiny installs)."""
    buffer = _current()
    if buffer.refusals or buffer.seen:
        connection_log_flush()
        if time.monotonic() - buffer.last_prune > PRUNE_EVERY:
            buffer.last_prune = time.monotonic()
            connection_log_prune()


def _ensure_flusher(buffer: _Buffer) -> None:
    if settings.MCP_CONNECTION_LOG_FLUSH_MS <= 0 or buffer.thread is not None:
        return
    with buffer.lock:
        if buffer.thread is None:
            buffer.thread = threading.Thread(target=_flush_forever, args=(buffer,), name="connections-log",
                                             daemon=True)
            buffer.thread.start()


def _flush_forever(buffer: _Buffer) -> None:
    interval = settings.MCP_CONNECTION_LOG_FLUSH_MS / 1000
    while buffer is _buffer:
        time.sleep(interval)
        try:
            close_old_connections()
            connection_log_flush()
            if time.monotonic() - buffer.last_prune > PRUNE_EVERY:
                buffer.last_prune = time.monotonic()
                connection_log_prune()
        except Exception:  # never let the flusher die; the next round retries
            logger.exception("Connections log flush failed")
        finally:
            close_old_connections()
