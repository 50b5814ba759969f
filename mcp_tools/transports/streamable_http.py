"""MCP Streamable HTTP: POST/GET/DELETE on /mcp and /mcp/<slug>, both protocol eras.

The view only does HTTP: Origin check, authentication, body and header rules,
session ids, and JSON or SSE framing. What a message means is decided by the
protocol layer's dispatcher (``mcp_backend.get_dispatcher``); tools run through
the invocation pipeline inside the backend.

Threads: a call that may stream (tools/call, prompts/get, resources/read, asked by a
client that accepts SSE) runs on ONE bounded, module-level pool of
``MCP_STREAM_WORKERS`` threads per process while the request's own (gunicorn)
thread writes the SSE events it produces. Everything else runs inline. Each
streaming call therefore holds one gunicorn thread and one pool thread until it
ends; when the pool is full a call waits up to ``_POOL_WAIT_S`` and then gets 503.
Keep the pool BELOW gunicorn's ``--threads``: measured with one gthread worker and
two threads, two open streams waiting for elicitation answers left no thread for the
answer POSTs, which waited until the calls timed out (MCP_CLIENT_REQUEST_TIMEOUT_S);
with four threads the answers were served in ~40 ms. The pool bound (default 4 with
gunicorn's 8 threads) keeps threads free for answers, health checks and JSON calls.
``tasks/result`` waits (streaming a background task's progress) get a smaller pool of
their own, so clients waiting for results never starve tool calls; when it is full, the
wait runs on the request's thread and answers plain JSON (the result, without live progress).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import contextvars
import dataclasses
import json
import logging
import queue
import threading
from typing import Any
from urllib.parse import urlsplit
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections
from django.http import HttpResponse, StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ..models import McpEndpoint
from ..protocol import ProtocolError
from ..protocol.context import NullOutbound
from ..protocol.dispatcher import may_send_before_response
from ..protocol.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorResponse,
    InvalidMessage,
    Request,
    Response,
    error_response,
    message_from_obj,
)
from ..protocol.versions import STATELESS_VERSIONS
from ..services import mcp_sessions
from ..services.live_events import session_ended_publish, session_key
from .authentication import ApiTokenAuthentication, client_ip, insufficient_scope_challenge
from ..exceptions import StreamCapReached
from ..protocol.json_text import JsonRejected
from .json_limits import request_json, request_message
from .mcp_backend import CONFORMANCE_SLUG, get_conformance_dispatcher, get_dispatcher, principal_for, quiet_tool_call
from .held_streams import connection_watcher, held_stream_acquire
from .mcp_changes import listen_frames, session_stream_frames
from .mcp_tasks import TASKS_REVISION, SessionTaskNotices
from .refusals import connection_note, message_client_info, outcome_refusal, refusal_mark

logger = logging.getLogger("mcp_tools.transports")

# tasks/result streams a running task's progress and status (mcp_tasks.TaskRelay).
STREAMABLE_METHODS = frozenset({"tools/call", "prompts/get", "resources/read", "tasks/result"})
SESSION_HEADER = "Mcp-Session-Id"
# Revisions whose sessions accept JSON-RPC batches (2025-06-18 removed them).
BATCH_VERSIONS = frozenset({"2025-03-26"})
MAX_BATCH = 100  # messages per batch; each is dispatched (and audited, rate-limited) on the request's thread
_POOL_WAIT_S = 1.0
_KEEPALIVE_S = 15.0
_DONE = object()

# One pool per process, never a thread per request (see the module docstring).
_POOL = ThreadPoolExecutor(max_workers=settings.MCP_STREAM_WORKERS, thread_name_prefix="mcp-stream")
_POOL_SLOTS = threading.BoundedSemaphore(settings.MCP_STREAM_WORKERS)
_WAIT_WORKERS = max(1, settings.MCP_STREAM_WORKERS // 2)
_WAIT_POOL = ThreadPoolExecutor(max_workers=_WAIT_WORKERS, thread_name_prefix="mcp-wait")
_WAIT_SLOTS = threading.BoundedSemaphore(_WAIT_WORKERS)
WAIT_METHODS = frozenset({"tasks/result"})


# --- small HTTP helpers -----------------------------------------------------------------------------

def _jsonrpc_error(status: int, code: int, message: str, request_id: Any = None, headers=None) -> HttpResponse:
    response = HttpResponse(json.dumps(error_response(request_id, code, message)), status=status,
                            content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _json(body: dict[str, Any] | list | None, status: int, headers=None) -> HttpResponse:
    if body is None:
        response = HttpResponse(status=status)
    else:
        response = HttpResponse(json.dumps(body, ensure_ascii=False), status=status,
                                content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _required_scope(response: dict[str, Any] | None) -> str | None:
    error = (response or {}).get("error")
    data = error.get("data") if isinstance(error, dict) else None
    return data.get("requiredScope") if isinstance(data, dict) else None


def _sse_frame(message: dict[str, Any]) -> bytes:
    return f"event: message\ndata: {json.dumps(message, ensure_ascii=False)}\n\n".encode()


def origin_allowed(origin: str | None) -> bool:
    """True for requests without Origin (non-browser clients) and origins on MCP_ALLOWED_ORIGINS."""
    if not origin:
        return True
    allowed = settings.MCP_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if not parts.scheme or not parts.hostname:
        return False
    for entry in allowed:
        try:
            want = urlsplit(entry)
            want_port = want.port
        except ValueError:
            continue
        if want.scheme == parts.scheme and want.hostname == parts.hostname and want_port in (None, port):
            return True
    return False


def _accepts(request, mime: str) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    if not accept.strip():
        return True
    types = {item.split(";")[0].strip().lower() for item in accept.split(",")}
    return mime in types or "*/*" in types or f"{mime.split('/')[0]}/*" in types


class _Rejected(exceptions.APIException):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status_code = status


# --- server-to-client traffic of one streaming call ----------------------------------------------

class StreamOutbound:
    """Implements the protocol layer's Outbound for one POST answered with SSE.

    Notifications and server-to-client requests go into ``events`` (drained by the SSE
    generator); the client's answer to a request arrives on another POST, possibly on
    another worker, through Redis (``mcp_sessions.client_response_wait``).
    """

    def __init__(self, *, session_id: str | None, request_id: Any, timeout_s: float):
        self.events: queue.Queue = queue.Queue()
        self.session_id = session_id
        self.request_id = request_id
        self.timeout_s = timeout_s
        self.closed = False

    def send_notification(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self.events.put(message)

    def send_request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        if self.session_id is None or self.closed:
            raise ProtocolError(INTERNAL_ERROR, "Cannot ask the client: no open session stream")
        self.events.put(message)
        wait = min(timeout or self.timeout_s, self.timeout_s)
        return mcp_sessions.client_request_result(session_id=self.session_id, message=message, timeout=wait)

    def is_cancelled(self) -> bool:
        if self.closed:
            return True
        if self.session_id is None or self.request_id is None:
            return False
        return mcp_sessions.request_is_cancelled(scope=self.session_id, request_id=self.request_id)


class InlineOutbound(NullOutbound):
    """A handshake-era request answered as plain JSON: it sends nothing early, but a client's
    notifications/cancelled (a Redis flag, set by whichever worker got it) still stops its tool."""

    def __init__(self, *, session_id: str, request_id: Any):
        self.session_id, self.request_id = session_id, request_id

    def is_cancelled(self) -> bool:
        return mcp_sessions.request_is_cancelled(scope=self.session_id, request_id=self.request_id)


# --- the view --------------------------------------------------------------------------------------

class StreamableHttpView(APIView):
    """POST/GET/DELETE /mcp (the default endpoint) and /mcp/<slug> (admin-defined endpoints)."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = []  # decided per endpoint in initial()
    parser_classes = []  # the body is read raw and parsed by the protocol layer
    renderer_classes = [JSONRenderer]

    # DRF would answer 406 to "Accept: text/event-stream" before our handlers run.
    def perform_content_negotiation(self, request, force=False):
        return (JSONRenderer(), "application/json")

    @property
    def default_response_headers(self):
        # DRF would stamp "Allow: GET, POST, DELETE, ..." on every answer, over the Allow of our 405s.
        return {}

    def initial(self, request, *args, **kwargs):
        if not origin_allowed(request.META.get("HTTP_ORIGIN")):
            refusal_mark(request, "origin_refused")
            raise _Rejected(403, "Forbidden: this Origin may not call the MCP endpoint.")
        self.endpoint, self.dispatcher = self._resolve(kwargs.get("slug"))
        # The product, as opposed to the test-only conformance fixtures (no auth, no change streams).
        self.is_product = self.dispatcher is not get_conformance_dispatcher()
        super().initial(request, *args, **kwargs)  # authentication happens here
        needs_auth = self.is_product and (self.endpoint is None or self.endpoint.requires_auth)
        if needs_auth and request.auth is None:
            raise exceptions.NotAuthenticated(
                f"Authentication required: send 'Authorization: Bearer <token>' or '{settings.MCP_API_KEY_HEADER}'.")
        self.principal = principal_for(credential=request.auth, endpoint=self.endpoint,
                                       client_ip=client_ip(request))
        self.principal_key = mcp_sessions.principal_key(request.auth)

    def _resolve(self, slug):
        if slug is None:
            return None, get_dispatcher(None)
        if slug == CONFORMANCE_SLUG:
            dispatcher = get_conformance_dispatcher()
            if dispatcher is None:
                refusal_mark(self.request, "unknown_endpoint")
                raise _Rejected(404, "No such MCP endpoint.")
            return None, dispatcher
        endpoint = McpEndpoint.objects.filter(slug=slug, enabled=True).first()
        if endpoint is None:
            refusal_mark(self.request, "unknown_endpoint")
            raise _Rejected(404, "No such MCP endpoint.")
        return endpoint, get_dispatcher(endpoint)

    @property
    def endpoint_key(self) -> str:
        return self.kwargs.get("slug") or ""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        if detail is not None:  # JSON-RPC shaped, so MCP clients can show the message
            code = INVALID_REQUEST
            response.data = error_response(None, code, str(detail))
        return response

    # --- GET / DELETE ---

    def _stateless_header(self, request) -> bool:
        return request.META.get("HTTP_MCP_PROTOCOL_VERSION", "").strip() in STATELESS_VERSIONS

    def get(self, request, slug=None):
        """Handshake era: the session's stream of change notifications (mcp_changes); 405 where there is none."""
        if self._stateless_header(request):
            return _json(None, 405, {"Allow": "POST"})  # the 2026-07-28 revision has no GET stream
        no_stream = _json(None, 405, {"Allow": "POST, DELETE"})
        if not self.is_product or not _accepts(request, "text/event-stream"):
            return no_stream
        session_id = request.META.get("HTTP_MCP_SESSION_ID", "").strip()
        if not session_id:
            refusal_mark(request, "session_required")
            return _jsonrpc_error(400, INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required")
        where = dict(session_id=session_id, endpoint=self.endpoint_key, principal=self.principal_key)
        loaded = mcp_sessions.session_load(**where)
        if loaded is None:
            refusal_mark(request, "session_unknown")
            return _jsonrpc_error(404, -32001, "Session not found: it ended or expired; initialize again")
        try:
            slot = held_stream_acquire(kind="get", principal=self.principal_key)
        except StreamCapReached as exc:
            refusal_mark(request, "stream_cap")
            return _stream_refused(exc)

        def subscriptions():
            loaded = mcp_sessions.session_load(**where)
            return None if loaded is None else list(loaded.state.subscriptions)

        # The session's tasks (2025-11-25 only) report their status and progress here too.
        notices = SessionTaskNotices().messages if loaded.state.protocol_version == TASKS_REVISION else None
        response = _sse_response(session_stream_frames(
            slot=slot, session_id=session_id, subscriptions=subscriptions, frame=_sse_frame, task_notices=notices,
            client_gone=connection_watcher(request.META)))
        response._resource_closers.append(slot.release)  # also when the body is never iterated
        return response

    def delete(self, request, slug=None):
        if self._stateless_header(request):
            return _json(None, 405, {"Allow": "POST"})
        session_id = request.META.get("HTTP_MCP_SESSION_ID", "").strip()
        if not session_id:
            refusal_mark(request, "session_required")
            return _jsonrpc_error(400, INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required")
        if not mcp_sessions.session_end(session_id=session_id, endpoint=self.endpoint_key,
                                        principal=self.principal_key):
            refusal_mark(request, "session_unknown")
            return _jsonrpc_error(404, -32001, "Session not found")
        session_ended_publish(session_id=session_id)  # its GET stream, on whichever worker, ends now
        return _json(None, 204)

    # --- POST ---

    def post(self, request, slug=None):
        try:
            body = request._request.body
        except RequestDataTooBig:
            body = None
        if body is None or len(body) > settings.MCP_MAX_BODY_BYTES:
            refusal_mark(request, "body_too_large")
            return _jsonrpc_error(413, INVALID_REQUEST,
                                  f"Request body is larger than {settings.MCP_MAX_BODY_BYTES} bytes")
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            refusal_mark(request, "wrong_content_type")
            return _jsonrpc_error(415, INVALID_REQUEST, "Send JSON-RPC with 'Content-Type: application/json'")
        if not (_accepts(request, "application/json") or _accepts(request, "text/event-stream")):
            refusal_mark(request, "not_acceptable")
            return _jsonrpc_error(406, INVALID_REQUEST,
                                  "Not Acceptable: accept application/json and text/event-stream")
        if body.lstrip()[:1] == b"[":
            batch = self._batch(request, body)
            if batch is not None:
                return batch
        try:
            message = request_message(body)
        except InvalidMessage as exc:
            refusal_mark(request, "malformed_message")
            return _jsonrpc_error(400, exc.code, exc.message, exc.request_id)

        session_id = request.META.get("HTTP_MCP_SESSION_ID", "").strip() or None
        session = None
        is_initialize = isinstance(message, Request) and message.method == "initialize"
        if session_id and not is_initialize:
            loaded = mcp_sessions.session_load(session_id=session_id, endpoint=self.endpoint_key,
                                               principal=self.principal_key)
            if loaded is None:
                refusal_mark(request, "session_unknown")
                return _jsonrpc_error(404, -32001, "Session not found: it ended or expired; initialize again",
                                      getattr(message, "id", None))
            session = loaded.state
            # Tasks this session starts report to its GET stream (by the session's key, never its id).
            self.principal = dataclasses.replace(self.principal, session_key=session_key(session_id))
        elif is_initialize:
            session_id = None

        if isinstance(message, (Response, ErrorResponse)):
            # A client's answer to one of our requests: hand it to whichever worker waits for it.
            if session_id is None:
                refusal_mark(request, "session_required")
                return _jsonrpc_error(400, INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required")
            reply = {"id": message.id, **({"result": message.result} if isinstance(message, Response)
                                          else {"error": message.error})}
            mcp_sessions.client_response_publish(session_id=session_id, message=reply)
            return _json(None, 202)

        headers = request.headers
        correlation_id = getattr(request, "request_id", None) or uuid.uuid4().hex[:16]
        streaming = (isinstance(message, Request) and message.method in STREAMABLE_METHODS
                     and _accepts(request, "text/event-stream")
                     and may_send_before_response(message, headers, has_session=session is not None)
                     and not self._quiet(message, session))
        if not streaming:
            outbound = (InlineOutbound(session_id=session_id, request_id=message.id)
                        if session is not None and isinstance(message, Request) else None)
            outcome = self.dispatcher.handle(message, headers=headers, session=session, principal=self.principal,
                                             outbound=outbound, correlation_id=correlation_id)
            return self._finish(outcome, message, session_id)
        return self._stream(message, headers, session, session_id, correlation_id)

    def _batch(self, request, body: bytes) -> HttpResponse | None:
        """A JSON-RPC batch in a session negotiated at 2025-03-26, the one revision that requires them
        (its Streamable HTTP section: the body MAY be a batch; 2025-06-18 removed them).

        Answers one JSON array with a response per request (202 when it held only notifications and
        responses), each message dispatched in order on this thread. None (not for us): there is no such
        session, and the caller refuses the array as every later revision does.
        """
        session_id = request.META.get("HTTP_MCP_SESSION_ID", "").strip()
        if not session_id:
            return None
        loaded = mcp_sessions.session_load(session_id=session_id, endpoint=self.endpoint_key,
                                           principal=self.principal_key)
        if loaded is None or loaded.state.protocol_version not in BATCH_VERSIONS:
            return None
        try:
            items = request_json(body)  # the one parser and limits of every door
        except JsonRejected as exc:
            refusal_mark(request, "malformed_message")
            return _jsonrpc_error(400, PARSE_ERROR, f"Parse error: {exc.reason}")
        if not items:
            return _jsonrpc_error(400, INVALID_REQUEST, "Invalid Request: an empty batch")
        if len(items) > MAX_BATCH:
            return _jsonrpc_error(400, INVALID_REQUEST,
                                  f"Invalid Request: a batch may hold at most {MAX_BATCH} messages")
        session = loaded.state
        self.principal = dataclasses.replace(self.principal, session_key=session_key(session_id))
        correlation_id = getattr(request, "request_id", None) or uuid.uuid4().hex[:16]
        replies = []
        for item in items:
            try:
                message = message_from_obj(item)
            except InvalidMessage as exc:
                replies.append(error_response(exc.request_id, exc.code, exc.message))
                continue
            if isinstance(message, (Response, ErrorResponse)):
                reply = {"id": message.id, **({"result": message.result} if isinstance(message, Response)
                                              else {"error": message.error})}
                mcp_sessions.client_response_publish(session_id=session_id, message=reply)
                continue
            if isinstance(message, Request) and message.method == "initialize":
                replies.append(error_response(message.id, INVALID_REQUEST,
                                              "Invalid Request: initialize must not be part of a batch"))
                continue
            outbound = InlineOutbound(session_id=session_id, request_id=message.id) \
                if isinstance(message, Request) else None
            outcome = self.dispatcher.handle(message, headers=request.headers, session=session,
                                             principal=self.principal, outbound=outbound,
                                             correlation_id=correlation_id)
            self._persist(outcome, message, session_id)
            if outcome.session_changed and outcome.session is not None:
                session = outcome.session
            if outcome.response is not None:
                replies.append(outcome.response)
        return _json(replies, 200) if replies else _json(None, 202)

    def _quiet(self, message: Request, session) -> bool:
        """A product tools/call in a handshake session that will send nothing early: answer it inline."""
        return (session is not None and message.method == "tools/call"
                and self.is_product and quiet_tool_call(message.params))

    def _persist(self, outcome, message, session_id: str | None) -> str | None:
        """Store session changes; returns the session id to announce (new after initialize)."""
        if outcome.cancelled_request_id is not None and session_id:
            mcp_sessions.request_cancel(scope=session_id, request_id=outcome.cancelled_request_id)
        if not (outcome.session_changed and outcome.session is not None):
            return None
        if isinstance(message, Request) and message.method == "initialize":
            return mcp_sessions.session_create(state=outcome.session, endpoint=self.endpoint_key,
                                               principal=self.principal_key)
        if session_id:
            mcp_sessions.session_save(session_id=session_id, state=outcome.session)
        return None

    def _finish(self, outcome, message, session_id: str | None) -> HttpResponse:
        self._note_connection(outcome, message)
        new_session = self._persist(outcome, message, session_id)
        headers = {SESSION_HEADER: new_session} if new_session else {}
        if outcome.kind == "accepted":
            return _json(None, 202, headers)
        if outcome.kind == "listen":
            return self._listen_response(outcome)
        scope = _required_scope(outcome.response)
        if scope:
            # RFC 6750 / MCP authorization: tell an OAuth client which scope to ask for.
            headers["WWW-Authenticate"] = insufficient_scope_challenge(self.request, scope)
            return _json(outcome.response, 403, headers)
        return _json(outcome.response, outcome.http_status, headers)

    def _note_connection(self, outcome, message) -> None:
        """Connections page: a refusal by the protocol layer, or which client this was (throttled)."""
        if not isinstance(message, Request) or not self.is_product:
            return
        if outcome.is_error:
            reason = outcome_refusal(outcome.response, has_session=outcome.session is not None)
            if reason:
                refusal_mark(self.request, reason, client_info=message_client_info(message.params))
            return
        info = message_client_info(message.params)
        if info is None and outcome.session is not None:
            info = outcome.session.client_info
        connection_note(credential=self.principal.caller().label, client_info=info, transport="streamable-http",
                        protocol_version=outcome.protocol_version or "", client_ip=client_ip(self.request),
                        user_agent=self.request.META.get("HTTP_USER_AGENT", ""))

    def _listen_response(self, outcome) -> StreamingHttpResponse:
        if not self.is_product:
            # The test-only fixtures have no change feed: acknowledge, then close cleanly.
            subscription = outcome.subscription
            frames = [_sse_frame(subscription.acknowledgement()), _sse_frame(subscription.final_response())]
            return _sse_response(iter(frames))
        try:
            slot = held_stream_acquire(kind="listen", principal=self.principal_key)
        except StreamCapReached as exc:
            return _stream_refused(exc, outcome.subscription.request_id)
        response = _sse_response(listen_frames(outcome.subscription, _sse_frame, slot=slot,
                                               client_gone=connection_watcher(self.request.META)))
        response._resource_closers.append(slot.release)  # also when the body is never iterated
        return response

    def _stream(self, message, headers, session, session_id, correlation_id):
        if message.method in WAIT_METHODS:
            pool, slots = _WAIT_POOL, _WAIT_SLOTS
            if not slots.acquire(blocking=False):  # every wait slot taken: wait here, answer JSON
                outcome = self.dispatcher.handle(message, headers=headers, session=session,
                                                 principal=self.principal, correlation_id=correlation_id)
                return self._finish(outcome, message, session_id)
        else:
            pool, slots = _POOL, _POOL_SLOTS
            if not slots.acquire(timeout=_POOL_WAIT_S):
                refusal_mark(self.request, "stream_cap")
                return _jsonrpc_error(503, INTERNAL_ERROR, "Server busy: too many streaming calls; retry shortly",
                                      message.id, {"Retry-After": "2"})
        outbound = StreamOutbound(session_id=session_id if session is not None else None, request_id=message.id,
                                  timeout_s=float(settings.MCP_CLIENT_REQUEST_TIMEOUT_S))
        box: dict[str, Any] = {}

        def job():
            close_old_connections()
            try:
                box["outcome"] = self.dispatcher.handle(message, headers=headers, session=session, outbound=outbound,
                                                        principal=self.principal, correlation_id=correlation_id)
            except BaseException:  # the dispatcher never raises for client/handler faults; be safe anyway
                logger.exception("MCP streaming call failed [ref=%s]", correlation_id)
                box["outcome"] = None
            finally:
                close_old_connections()
                slots.release()
                outbound.events.put(_DONE)

        try:
            pool.submit(contextvars.copy_context().run, job)
        except RuntimeError:
            slots.release()
            raise
        first = outbound.events.get()
        if first is _DONE:
            return self._after(box.get("outcome"), message, session_id)
        return _sse_response(self._events(first, outbound, box, message, session_id))

    def _after(self, outcome, message, session_id) -> HttpResponse:
        if outcome is None:
            return _jsonrpc_error(500, INTERNAL_ERROR, "Internal error", message.id)
        return self._finish(outcome, message, session_id)

    def _events(self, first, outbound: StreamOutbound, box, message, session_id):
        try:
            yield _sse_frame(first)
            while True:
                try:
                    item = outbound.events.get(timeout=_KEEPALIVE_S)
                except queue.Empty:
                    yield b": keep-alive\n\n"
                    continue
                if item is _DONE:
                    break
                yield _sse_frame(item)
            outcome = box.get("outcome")
            if outcome is None:
                yield _sse_frame(error_response(message.id, INTERNAL_ERROR, "Internal error"))
                return
            close_old_connections()
            self._persist(outcome, message, session_id)
            if outcome.response is not None:
                yield _sse_frame(outcome.response)
        finally:
            outbound.closed = True  # client went away or we are done: the running call sees is_cancelled()


def _stream_refused(exc: StreamCapReached, request_id: Any = None) -> HttpResponse:
    """503 + Retry-After for a held stream beyond a cap (held_streams), before anything was streamed."""
    return _jsonrpc_error(503, INTERNAL_ERROR, exc.message, request_id, {"Retry-After": str(exc.retry_after_s)})


def _sse_response(frames) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"
    return response
