"""The HTTP+SSE transport of MCP revision 2024-11-05 (what Mistral's ``MCPClientSSE`` speaks).

``GET /mcp/sse`` (or ``/mcp/<slug>/sse``) opens an event stream. Its first event,
``endpoint``, names where to POST messages: ``/mcp/messages?session_id=<id>``.
Each POSTed JSON-RPC message is answered ``202 Accepted``; its response (and any
progress or log notification it causes) arrives on the stream as an event ``message``.
Calls that may ask the client something (``tools/call``, ``prompts/get``,
``resources/read``) run on a small bounded pool, so their POST is answered at once
and the client can POST its answer (SDK clients send one POST at a time); other
messages are processed in the POST's own thread. Idle streams get a ``: ping``
comment every ``MCP_SSE_PING_INTERVAL_S`` seconds. Closing the stream ends the
session: later POSTs with its id get 404. A revoked or expired credential ends
the stream at the next keep-alive.

The stream and the POSTs may be served by different worker processes: the
session lives in Redis and messages reach the stream over Redis pub/sub
(``services.sse_sessions``). The stream's generator itself waits on the
subscription, so no thread is started per request, but an open stream does
occupy one gunicorn (gthread) thread for as long as the client keeps it open:
size ``--threads`` x ``--workers`` for the number of concurrent SSE clients plus
the POST traffic. It holds no database connection while it waits. Streams are
capped per process and per credential (``held_streams``: 503 + Retry-After beyond),
and a stream notices within a second that its client left.

Versions: the handshake era's, plus 2024-11-05 (the revision that defined this
transport; ``get_dispatcher(endpoint, HTTP_SSE_DOOR)``), and list methods answer
every item in one page unless the endpoint sets a page size (``MCP_SSE_PAGE_SIZE``):
clients of this door often read only the first page (mistralai's ``get_tools()``).

Server-to-client requests (elicitation for tools that need confirmation, sampling)
go out on the stream; the client's answer arrives as a POSTed JSON-RPC response,
possibly at another worker, and reaches the waiting call through Redis (as on
``/mcp``). When the pool is full the call runs in its POST's thread and such a
request is refused at once with a clear error instead of hanging.

Authentication (bearer or API-key header, on the GET and on every POST), scopes,
limits and audit are those of every other path: POSTs must come from the
credential that opened the stream, and tool calls run through the dispatcher ->
``DjangoBackend`` -> the one invocation pipeline.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import contextvars
import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, close_old_connections, connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView
import redis

from ..models import McpEndpoint
from ..protocol import ProtocolError
from ..protocol.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    ErrorResponse,
    InvalidMessage,
    Request,
    Response,
    error_response,
)
from ..services.mcp_sessions import (
    client_request_result,
    client_response_publish,
    principal_key,
    request_cancel,
    request_is_cancelled,
)
from ..services.sse_sessions import (
    SseUnavailable,
    sse_session_close,
    sse_session_get,
    sse_session_is_listening,
    sse_session_open,
    sse_session_save_state,
    sse_session_send,
    sse_session_touch,
)
from ..exceptions import StreamCapReached
from .authentication import ApiTokenAuthentication, client_ip
from .held_streams import POLL_S, connection_watcher, held_stream_acquire
from .json_limits import request_message
from .mcp_backend import HTTP_SSE_DOOR, get_dispatcher, principal_for
from .refusals import connection_note, refusal_mark
from .streamable_http import origin_allowed

logger = logging.getLogger("mcp_tools.transports.sse")

TRANSPORT = "mcp-sse"
# Calls that may ask the client (elicitation, sampling) run off their POST's thread: see the module docstring.
BACKGROUND_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
_POOL = ThreadPoolExecutor(max_workers=settings.MCP_STREAM_WORKERS, thread_name_prefix="mcp-sse-call")
_POOL_SLOTS = threading.BoundedSemaphore(settings.MCP_STREAM_WORKERS)


def _error(status: int, message: str, code: int = INVALID_REQUEST) -> JsonResponse:
    """JSON-RPC shaped, like the Streamable HTTP transport's HTTP-level refusals."""
    return JsonResponse(error_response(None, code, message), status=status)


def _gone() -> JsonResponse:
    return _error(404, "Unknown or ended session: open a new event stream (GET .../sse).")


class _Refused(exceptions.APIException):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status_code = status


class _SseView(APIView):
    """Shared by the stream and the messages: Origin, endpoint, authentication (as /mcp does)."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = []  # decided per endpoint in initial(): a public endpoint takes no credential
    renderer_classes = [JSONRenderer]
    endpoint: McpEndpoint | None = None

    # DRF would answer 406 to "Accept: text/event-stream" before our handlers run.
    def perform_content_negotiation(self, request, force=False):
        return (JSONRenderer(), "application/json")

    def initial(self, request, *args, **kwargs):
        if not origin_allowed(request.META.get("HTTP_ORIGIN")):
            refusal_mark(request, "origin_refused")
            raise _Refused(403, "Forbidden: this Origin may not call the MCP endpoint.")
        slug = kwargs.get("slug")
        if slug:
            self.endpoint = McpEndpoint.objects.filter(slug=slug, enabled=True).first()
            if self.endpoint is None:
                refusal_mark(request, "unknown_endpoint")
                raise _Refused(404, "No such MCP endpoint.")
        super().initial(request, *args, **kwargs)  # authentication happens here (401 for a bad credential)
        if request.auth is None and (self.endpoint is None or self.endpoint.requires_auth):
            raise exceptions.NotAuthenticated(
                f"Authentication required: send 'Authorization: Bearer <token>' or '{settings.MCP_API_KEY_HEADER}'.")

    def handle_exception(self, exc):
        if isinstance(exc, (SseUnavailable, redis.RedisError)):
            logger.error("HTTP+SSE transport unavailable: %s", exc)
            message = str(exc) if isinstance(exc, SseUnavailable) else \
                "The HTTP+SSE transport is temporarily unavailable (its message bus cannot be reached)."
            return _error(503, message, INTERNAL_ERROR)
        response = super().handle_exception(exc)
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        if detail is not None:
            response.data = error_response(None, INVALID_REQUEST, str(detail))
        return response


class SseStreamView(_SseView):
    """GET: open the event stream of a new session."""

    def get(self, request, slug: str | None = None):
        principal = principal_key(request.auth)
        try:
            slot = held_stream_acquire(kind="sse", principal=principal)
        except StreamCapReached as exc:
            response = _error(503, exc.message, INTERNAL_ERROR)
            response["Retry-After"] = str(exc.retry_after_s)
            return response
        try:
            session_id, pubsub = sse_session_open(principal=principal, endpoint=slug or "")
        except BaseException:
            slot.release()
            raise
        path = reverse("mcp-sse-messages", kwargs={"slug": slug}) if slug else reverse("mcp-sse-messages-default")
        endpoint_url = f"{path}?{urlencode({'session_id': session_id})}"
        logger.info("SSE session %s… opened (endpoint %s)", session_id[:8], slug or "default")
        response = StreamingHttpResponse(
            _event_stream(session_id=session_id, pubsub=pubsub, endpoint_url=endpoint_url,
                          credential=request.auth, slot=slot, client_gone=connection_watcher(request.META)),
            content_type="text/event-stream")
        response._resource_closers.append(slot.release)  # also when the body is never iterated
        response["Cache-Control"] = "no-cache, no-transform"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
        return response


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def _credential_live(credential) -> bool:
    """Is the stream's credential still valid (not revoked, deleted or expired) right now?"""
    if credential is None:
        return True
    try:
        fresh = type(credential).objects.filter(pk=credential.pk).first()
    except DatabaseError as exc:  # the next POST is checked anyway; do not drop the client for a blip
        logger.warning("Could not re-check an SSE stream's credential: %s", exc)
        return True
    finally:
        connections.close_all()  # an open stream must not pin a database connection between checks
    if fresh is None or getattr(fresh, "revoked_at", None) is not None:
        return False
    is_expired = getattr(fresh, "is_expired", None)  # ApiToken and OAuth access tokens both have it
    return not (callable(is_expired) and is_expired())


def _event_stream(*, session_id: str, pubsub, endpoint_url: str, credential, slot, client_gone):
    """The body of the GET: the endpoint event, then every message published for the session.

    Wakes at least every ``held_streams.POLL_S`` to see whether the client left (``client_gone``), so a
    closed stream frees its thread, slot and subscription within a second, not at the next ping."""
    interval = float(settings.MCP_SSE_PING_INTERVAL_S)
    try:
        connections.close_all()  # the stream may stay open for hours: give back the request's connection
        yield _event("endpoint", endpoint_url)
        next_ping = time.monotonic() + interval
        while True:
            remaining = next_ping - time.monotonic()
            if remaining <= 0:
                if not sse_session_touch(session_id=session_id):
                    return  # ended elsewhere
                if not _credential_live(credential):
                    logger.info("SSE session %s… closed: its credential was revoked or expired", session_id[:8])
                    return
                yield b": ping\n\n"
                next_ping = time.monotonic() + interval
                continue
            message = pubsub.get_message(timeout=min(remaining, POLL_S))
            if message and message.get("type") == "message":
                yield _event("message", message["data"].decode())
            elif message is None and client_gone():
                return
    except redis.RedisError as exc:
        logger.warning("SSE session %s… closed: message bus error %s", session_id[:8], exc)
    finally:
        slot.release()
        try:
            sse_session_close(session_id=session_id, pubsub=pubsub)
        except redis.RedisError:
            pass  # the record expires by itself
        logger.info("SSE session %s… closed", session_id[:8])


class _StreamOutbound:
    """Outbound of one POSTed request: everything goes onto the session's stream.

    ``can_ask`` is False when the call runs in its own POST's thread: the client's answer
    would be a new POST, which SDK clients send only after this one's 202, so asking would hang.
    """

    def __init__(self, *, session_id: str, request_id: Any, can_ask: bool):
        self.session_id = session_id
        self.request_id = request_id
        self.can_ask = can_ask

    def send_notification(self, message: dict[str, Any]) -> None:
        sse_session_send(session_id=self.session_id, message=message)

    def send_request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        if not self.can_ask:
            raise ProtocolError(INTERNAL_ERROR, f"The server is too busy to ask the user ({message.get('method')}) "
                                                "right now; try again shortly.")
        if not sse_session_send(session_id=self.session_id, message=message):
            raise ProtocolError(INTERNAL_ERROR, "Cannot ask the client: its event stream is closed")
        limit = float(settings.MCP_CLIENT_REQUEST_TIMEOUT_S)
        return client_request_result(session_id=self.session_id, message=message,
                                     timeout=min(timeout or limit, limit))

    def is_cancelled(self) -> bool:
        if self.request_id is None:
            return False
        return request_is_cancelled(scope=self.session_id, request_id=self.request_id)


class SseMessageView(_SseView):
    """POST: one JSON-RPC message for a session; 202, the answer goes to the stream."""

    parser_classes = []  # the raw body goes to the protocol layer

    def post(self, request, slug: str | None = None):
        session_id = request.query_params.get("session_id", "")
        session = sse_session_get(session_id=session_id)
        if (session is None or session.principal != principal_key(request.auth)
                or session.endpoint != (slug or "")):
            refusal_mark(request, "session_unknown")
            return _gone()
        if not sse_session_is_listening(session_id=session_id):
            sse_session_close(session_id=session_id)  # its stream died without cleaning up
            refusal_mark(request, "session_unknown")
            return _gone()
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            refusal_mark(request, "wrong_content_type")
            return _error(415, "Send the message as JSON with 'Content-Type: application/json'.")
        try:
            body = request._request.body
        except RequestDataTooBig:
            body = None
        if body is None or len(body) > settings.MCP_MAX_BODY_BYTES:
            refusal_mark(request, "body_too_large")
            return _error(413, f"Message is larger than {settings.MCP_MAX_BODY_BYTES} bytes.")
        return self._dispatch_message(request, session, body)

    def _dispatch_message(self, request, session, body: bytes) -> HttpResponse:
        try:
            message = request_message(body)
        except InvalidMessage as exc:
            refusal_mark(request, "malformed_message")
            error = error_response(exc.request_id, exc.code, exc.message)
            if exc.request_id is not None:  # a client waiting for that id hears it on the stream too
                sse_session_send(session_id=session.session_id, message=error)
            return JsonResponse(error, status=400)
        if isinstance(message, (Response, ErrorResponse)):
            # The client's answer to one of our requests: hand it to whichever worker's call waits for it.
            reply = {"id": message.id, **({"result": message.result} if isinstance(message, Response)
                                          else {"error": message.error})}
            client_response_publish(session_id=session.session_id, message=reply)
            return HttpResponse(status=202)
        principal = principal_for(credential=request.auth, endpoint=self.endpoint, client_ip=client_ip(request),
                                  transport=TRANSPORT)
        if isinstance(message, Request) and message.method == "initialize":
            connection_note(credential=principal.caller().label, client_info=message.params.get("clientInfo"),
                            transport="http+sse", protocol_version=str(message.params.get("protocolVersion", "")),
                            client_ip=principal.client_ip, user_agent=request.META.get("HTTP_USER_AGENT", ""))
        work = dict(message=message, session=session, principal=principal, endpoint=self.endpoint,
                    headers=request.headers, correlation_id=request.request_id)
        if isinstance(message, Request) and message.method in BACKGROUND_METHODS and _POOL_SLOTS.acquire(
                blocking=False):
            try:
                _POOL.submit(contextvars.copy_context().run, _process_in_background, work)
            except RuntimeError:
                _POOL_SLOTS.release()
                raise
        else:
            _process(**work, can_ask=False)
        return HttpResponse(status=202)


def _process_in_background(work: dict) -> None:
    close_old_connections()
    try:
        _process(**work, can_ask=True)
    except Exception:  # the dispatcher answers client and handler faults itself; this is a last resort
        logger.exception("HTTP+SSE call failed [ref=%s]", work["correlation_id"])
        message = work["message"]
        sse_session_send(session_id=work["session"].session_id,
                         message=error_response(message.id, INTERNAL_ERROR, "Internal error"))
    finally:
        close_old_connections()
        _POOL_SLOTS.release()


def _process(*, message, session, principal, endpoint, headers, correlation_id, can_ask: bool) -> None:
    """Run one message through the dispatcher and put its answer on the session's stream."""
    session_id = session.session_id
    request_id = message.id if isinstance(message, Request) else None
    outcome = get_dispatcher(endpoint, HTTP_SSE_DOOR).handle(
        message, headers=headers, session=session.state,
        outbound=_StreamOutbound(session_id=session_id, request_id=request_id, can_ask=can_ask),
        principal=principal, correlation_id=correlation_id)
    # Store the new state before the answer goes out: the client's next message may need it.
    if outcome.session_changed and outcome.session is not None:
        if not sse_session_save_state(session_id=session_id, state=outcome.session):
            logger.info("SSE session %s… ended while a message was processed", session_id[:8])
            return
    if outcome.cancelled_request_id is not None:
        request_cancel(scope=session_id, request_id=outcome.cancelled_request_id)
    response = outcome.response
    if outcome.kind == "listen":
        response = error_response(outcome.subscription.request_id, METHOD_NOT_FOUND,
                                  "subscriptions/listen is not available on the HTTP+SSE transport; "
                                  "use Streamable HTTP at /mcp.")
    if response is not None and not sse_session_send(session_id=session_id, message=response):
        logger.warning("SSE session %s…: stream closed before the answer to %s could be delivered",
                       session_id[:8], json.dumps(response.get("id")))
