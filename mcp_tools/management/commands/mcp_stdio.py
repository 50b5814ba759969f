"""MCP over stdio for local clients (Claude Desktop, Cursor, the Inspector): newline-delimited JSON-RPC.

    python manage.py mcp_stdio --token mcp_xxxxxxxx_... [--endpoint support]

The same dispatcher and backend as the HTTP endpoint serve the messages, so tools run
through the one invocation pipeline (audited with transport "stdio"). One process is
one client and one session, so the session lives in this process. Requests run on a
small, bounded thread pool so that the reading loop stays free to receive the client's
answers to our requests (elicitation, sampling) and cancellations. Nothing but
JSON-RPC is written to stdout; diagnostics go to stderr.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import json
import os
import queue
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from ...exceptions import AuthenticationFailed, NotPermitted
from ...models import McpEndpoint
from ...protocol import ProtocolError
from ...protocol.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, ErrorResponse, InvalidMessage, Response, error_response
from ...services.tokens import token_authenticate
from ...transports.json_limits import request_message
from ...transports.mcp_backend import get_dispatcher, principal_for

_WORKERS = 4


class _Writer:
    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def write(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class _Connection:
    """The state of the one client on stdin/stdout."""

    def __init__(self, writer: _Writer, timeout_s: float):
        self.writer = writer
        self.timeout_s = timeout_s
        self.session = None
        self.waiting: dict[Any, queue.Queue] = {}
        self.cancelled: set[Any] = set()
        self.lock = threading.Lock()

    def outbound(self, request_id):
        return _StdioOutbound(self, request_id)

    def deliver(self, reply) -> None:
        with self.lock:
            waiter = self.waiting.get(reply.id)
        if waiter is not None:
            waiter.put(reply)


class _StdioOutbound:
    def __init__(self, connection: _Connection, request_id):
        self.connection, self.request_id = connection, request_id

    def send_notification(self, message):
        self.connection.writer.write(message)

    def send_request(self, message, timeout):
        waiter: queue.Queue = queue.Queue()
        with self.connection.lock:
            self.connection.waiting[message["id"]] = waiter
        try:
            self.connection.writer.write(message)
            wait = min(timeout or self.connection.timeout_s, self.connection.timeout_s)
            try:
                reply = waiter.get(timeout=wait)
            except queue.Empty:
                raise ProtocolError(INTERNAL_ERROR, f"The client did not answer {message['method']} in time") from None
        finally:
            with self.connection.lock:
                self.connection.waiting.pop(message["id"], None)
        if isinstance(reply, ErrorResponse):
            raise ProtocolError(int(reply.error.get("code", INTERNAL_ERROR)), str(reply.error.get("message", "")))
        return reply.result

    def is_cancelled(self):
        return self.request_id in self.connection.cancelled


class Command(BaseCommand):
    help = "Serve MCP over stdin/stdout (newline-delimited JSON-RPC) with an API token's permissions."

    def add_arguments(self, parser):
        parser.add_argument("--token", default=os.environ.get("MCP_TOKEN", ""),
                            help="API token (or set MCP_TOKEN, which keeps it out of the process list).")
        parser.add_argument("--endpoint", default="", help="Serve an admin-defined endpoint's tool set (its slug).")

    def handle(self, *args, token, endpoint, **options):
        if not token:
            raise CommandError("Give an API token with --token or the MCP_TOKEN environment variable.")
        try:
            token_authenticate(raw=token)  # refuse a bad token at start, before reading stdin
        except (AuthenticationFailed, NotPermitted) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from None
        chosen = None
        if endpoint:
            chosen = McpEndpoint.objects.filter(slug=endpoint, enabled=True).first()
            if chosen is None:
                raise CommandError(f"No enabled MCP endpoint '{endpoint}'.")
        dispatcher = get_dispatcher(chosen)

        def current_principal():
            """Checked before every request, as the HTTP doors check theirs: revocation and expiry end the session."""
            close_old_connections()
            fresh = token_authenticate(raw=token)
            return principal_for(credential=fresh, endpoint=chosen, client_ip=None, transport="stdio")

        # Lines are read as bytes: text that is not UTF-8 is the parser's to refuse (-32700), not a crash.
        self.serve(dispatcher, current_principal, sys.stdin.buffer, sys.stdout)

    def serve(self, dispatcher, current_principal, stdin, stdout) -> None:
        """Serve until stdin closes; raise CommandError when the token stops being valid (revoked, expired).

        ``current_principal()`` returns the caller for the next request or raises AuthenticationFailed /
        NotPermitted; the refused request is answered with that reason before the session ends.
        """
        connection = _Connection(_Writer(stdout), float(settings.MCP_CLIENT_REQUEST_TIMEOUT_S))
        pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="mcp-stdio")

        def run(message, principal):
            close_old_connections()
            try:
                outcome = dispatcher.handle(message, session=connection.session, principal=principal,
                                            outbound=connection.outbound(getattr(message, "id", None)))
                if outcome.session_changed and outcome.session is not None:
                    connection.session = outcome.session
                if outcome.cancelled_request_id is not None:
                    connection.cancelled.add(outcome.cancelled_request_id)
                if outcome.response is not None:
                    connection.writer.write(outcome.response)
            except Exception as exc:  # the dispatcher already turns handler faults into errors
                self.stderr.write(f"mcp_stdio: {exc.__class__.__name__}: {exc}")
            finally:
                close_old_connections()

        refused = None
        try:
            for line in stdin:
                if not line.strip():
                    continue
                try:
                    message = request_message(line)
                except InvalidMessage as exc:
                    connection.writer.write(error_response(exc.request_id, exc.code, exc.message))
                    continue
                if isinstance(message, (Response, ErrorResponse)):
                    connection.deliver(message)
                    continue
                try:
                    principal = current_principal()
                except (AuthenticationFailed, NotPermitted) as exc:
                    refused = str(getattr(exc, "message", exc))
                    if getattr(message, "id", None) is not None:
                        connection.writer.write(error_response(message.id, INVALID_REQUEST, refused))
                    break
                if getattr(message, "method", "") in ("initialize", "notifications/initialized",
                                                      "notifications/cancelled"):
                    run(message, principal)  # in order: later messages depend on the session they set up
                else:
                    pool.submit(run, message, principal)
        finally:
            pool.shutdown(wait=True)
        if refused is not None:
            raise CommandError(f"Session ended: {refused}")
