"""``mcp_doctor``: walk what an MCP client does against a server, step by step, and say what failed and why.

Steps, in the order a client meets them: DNS, TCP, TLS (https), ``/health`` (optional), the
request without credentials and its ``WWW-Authenticate`` challenge (RFC 9728 protected
resource metadata, then the authorization server's RFC 8414 metadata), an ``Origin`` check
(what browser-based clients send), the handshake era (``initialize`` + ``tools/list``), the
2026-07-28 era (``server/discover`` + ``tools/list``), the handshake era's GET stream, the
HTTP+SSE transport (2024-11-05), and one ``tools/call``.

The protocol steps use the official MCP SDK client (``mcp`` package), so a failure is what a
real client would see; the HTTP-level steps use plain httpx requests to name the fault (a
redirect, a 406, a refused Origin) that the SDK would only report as an exception.

Each step ends ``pass``, ``fail``, ``warn`` (works, but some clients will stumble) or ``skip``.
A server needs only one protocol era and need not offer HTTP+SSE: the era a server does not
speak is a ``warn`` as long as the other passes. The run is healthy (exit 0) when no step failed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

try:  # the official SDK client; the doctor says so clearly when it is missing
    import httpx2
    from mcp import Client, ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp_types import Implementation
except ImportError:  # pragma: no cover - exercised only on installs without the SDK
    Client = None

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
LEGACY_VERSION = "2025-11-25"
STATELESS_VERSION = "2026-07-28"
ACCEPT_BOTH = "application/json, text/event-stream"
DOCTOR_INFO = {"name": "mcp-doctor", "version": "1"}


@dataclass
class Step:
    name: str
    status: str
    summary: str
    ms: float = 0.0
    cause: str = ""
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    url: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status != FAIL for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "ok": self.ok, "steps": [asdict(step) for step in self.steps]}


class _Timer:
    def __enter__(self):
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.ms = round((time.perf_counter() - self.started) * 1000, 1)


def _error_text(exc: BaseException) -> str:
    """A one-line description of an exception, unwrapping anyio/SDK exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _server_message(response: httpx.Response) -> str:
    """The human message in an error body (JSON-RPC error, 'detail' or 'error'), if any."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))[:200]
        return str(error or body.get("detail") or "")[:200]
    return ""


def _rpc(method: str, params: dict | None = None, id_: int | None = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if id_ is not None:
        message["id"] = id_
    return message


def _initialize_message() -> dict[str, Any]:
    return _rpc("initialize", {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": DOCTOR_INFO})


def _http_fault(response: httpx.Response, *, with_credentials: bool) -> tuple[str, str]:
    """(cause, fix) for an HTTP answer a client cannot use."""
    status, message = response.status_code, _server_message(response)
    said = f" The server said: {message}" if message else ""
    if status in (301, 302, 303, 307, 308):
        target = response.headers.get("Location", "?")
        return (f"The endpoint redirects ({status}) to {target}. Many MCP clients do not follow redirects on "
                "POST, and a 301/302/303 turns the POST into a GET that loses the body.",
                f"Configure the client with the final URL ({urljoin(str(response.request.url), target)}), "
                "or make the server answer on the URL itself.")
    if status == 401:
        if with_credentials:
            return ("The server refused the credential." + said,
                    "Check the token (whole value, not revoked or expired) and the header it goes in.")
        return ("The server needs a credential." + said,
                "Pass --token TOKEN (sent as 'Authorization: Bearer TOKEN') or --header 'Name: value'.")
    if status == 403:
        return ("The server refused this client." + said,
                "Check the token's permissions and allowed IPs, and the server's allowed Origins and networks.")
    if status == 404:
        return ("Nothing answers at this URL." + said, "Check the path: e.g. /mcp (or /mcp/<slug>).")
    if status == 405:
        return ("The URL does not take POST." + said, "Point the client at the MCP endpoint, not a web page.")
    if status == 406:
        return ("The server refused the Accept header." + said,
                f"Clients send 'Accept: {ACCEPT_BOTH}'; the server must accept it.")
    if status == 421 or (status == 400 and "host" in message.lower()):
        return ("The server does not answer to this host name." + said,
                "Use the server's configured public host name in the URL.")
    if status >= 500:
        return (f"The server failed ({status})." + said, "Look at the server's logs; retry when it is healthy.")
    return (f"Unexpected HTTP {status}." + said, "Check the URL and the server's documentation.")


class Doctor:
    """One diagnosis of one URL. ``run()`` returns a Report; nothing is printed here."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, tool: str | None = None,
                 arguments: dict[str, Any] | None = None, timeout: float = 10.0, verify: bool = True):
        self.url = url
        self.parts = urlsplit(url)
        self.headers = dict(headers or {})
        self.tool, self.arguments = tool, arguments
        self.timeout, self.verify = timeout, verify
        self.report = Report(url=url)
        self.origin = f"{self.parts.scheme}://{self.parts.netloc}"

    def add(self, step: Step) -> Step:
        self.report.steps.append(step)
        return step

    # --- network ------------------------------------------------------------------------------

    def run(self) -> Report:
        if self.parts.scheme not in ("http", "https") or not self.parts.hostname:
            self.add(Step("url", FAIL, f"Not an http(s) URL: {self.url}", cause="The URL cannot be used.",
                          fix="Give the full endpoint URL, e.g. https://mcp.example.com/mcp."))
            return self.report
        if not (self._dns() and self._tcp() and self._tls()):
            return self.report
        with httpx.Client(timeout=self.timeout, verify=self.verify, follow_redirects=False) as http:
            self.http = http
            self._health()
            reachable = self._unauthenticated()
            if reachable is None:
                return self.report
            if not self._post_with_credentials():
                return self.report
            self._origin()
            anyio.run(self._protocol_steps)
        return self.report

    def _dns(self) -> bool:
        host = self.parts.hostname
        with _Timer() as timer:
            try:
                infos = socket.getaddrinfo(host, self._port(), type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                self.add(Step("dns", FAIL, f"{host} does not resolve ({exc.strerror})", ms=0,
                              cause="The host name is unknown to DNS (typo, internal name, VPN not up).",
                              fix="Check the host name, or connect the network/VPN that knows it."))
                return False
        self.addresses = [info[4] for info in infos]
        shown = ", ".join(sorted({address[0] for address in self.addresses}))
        self.add(Step("dns", PASS, f"{host} -> {shown}", ms=timer.ms))
        return True

    def _port(self) -> int:
        return self.parts.port or (443 if self.parts.scheme == "https" else 80)

    def _tcp(self) -> bool:
        errors = []
        with _Timer() as timer:
            for address in self.addresses:
                try:
                    with socket.create_connection(address[:2], timeout=self.timeout):
                        break
                except OSError as exc:
                    errors.append(f"{address[0]}: {exc.strerror or exc}")
            else:
                self.add(Step("tcp", FAIL, f"cannot connect to port {self._port()} ({'; '.join(errors)})",
                              cause="Nothing listens there, or a firewall drops the connection.",
                              fix="Check that the server runs and the port is right; check firewalls and "
                                  "that the server binds to an address you can reach (not only 127.0.0.1)."))
                return False
        self.add(Step("tcp", PASS, f"connected to {self.parts.hostname}:{self._port()}", ms=timer.ms))
        return True

    def _tls(self) -> bool:
        if self.parts.scheme != "https":
            return True
        context = ssl.create_default_context() if self.verify else ssl._create_unverified_context()
        with _Timer() as timer:
            try:
                with socket.create_connection((self.parts.hostname, self._port()), timeout=self.timeout) as raw, \
                        context.wrap_socket(raw, server_hostname=self.parts.hostname) as tls:
                    version = tls.version()
                    expires = (tls.getpeercert() or {}).get("notAfter", "")
            except ssl.SSLCertVerificationError as exc:
                hostname = "match" in (exc.verify_message or "") or "hostname" in str(exc).lower()
                self.add(Step("tls", FAIL, f"certificate not accepted: {exc.verify_message or exc}", ms=timer.ms,
                              cause=("The certificate is not for this host name." if hostname else
                                     "The certificate is self-signed, expired or from an unknown authority."),
                              fix=("Use the host name the certificate names, or fix the certificate."
                                   if hostname else "Install a certificate from a public CA (e.g. Let's "
                                   "Encrypt), or give the client your CA bundle (SSL_CERT_FILE).")))
                return False
            except (ssl.SSLError, OSError) as exc:
                self.add(Step("tls", FAIL, f"TLS handshake failed: {exc}", ms=timer.ms,
                              cause="The port does not speak TLS, or only old protocol versions.",
                              fix="Check that the URL's scheme and port match the server (https on a TLS port)."))
                return False
        self.add(Step("tls", PASS, f"{version}, certificate valid for {self.parts.hostname}"
                      + (f" until {expires}" if expires else ""), ms=timer.ms))
        return True

    # --- HTTP ---------------------------------------------------------------------------------

    def _health(self) -> None:
        with _Timer() as timer:
            try:
                response = self.http.get(f"{self.origin}/health")
            except httpx.HTTPError as exc:
                self.add(Step("health", WARN, f"/health: {_error_text(exc)}", ms=timer.ms))
                return
        if response.status_code == 200:
            self.add(Step("health", PASS, "/health answered 200", ms=timer.ms))
        else:
            self.add(Step("health", SKIP, f"/health answered {response.status_code} (optional; not every "
                          "server has one)", ms=timer.ms))

    def _post(self, message: dict, *, headers: dict[str, str] | None = None,
              credentials: bool = True) -> httpx.Response:
        sent = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json",
                **(self.headers if credentials else {}), **(headers or {})}
        return self.http.post(self.url, content=json.dumps(message), headers=sent)

    def _unauthenticated(self) -> bool | None:
        """POST initialize without credentials; follow a 401's RFC 9728 challenge. None: stop here."""
        with _Timer() as timer:
            try:
                response = self._post(_initialize_message(), credentials=False)
            except httpx.HTTPError as exc:
                self.add(Step("unauthenticated", FAIL, _error_text(exc), ms=timer.ms,
                              cause="The server closed or timed out the connection.",
                              fix="Check the URL and that this is an HTTP server."))
                return None
        status = response.status_code
        if status in (301, 302, 303, 307, 308):
            cause, fix = _http_fault(response, with_credentials=False)
            self.add(Step("unauthenticated", FAIL, f"POST {self.parts.path or '/'} -> {status} redirect",
                          ms=timer.ms, cause=cause, fix=fix, data={"location": response.headers.get("Location")}))
            return None
        if status < 300:
            self.add(Step("unauthenticated", PASS, f"HTTP {status}: this endpoint takes requests without a "
                          "credential", ms=timer.ms))
            return True
        if status != 401:
            cause, fix = _http_fault(response, with_credentials=False)
            self.add(Step("unauthenticated", FAIL, f"HTTP {status} without a credential", ms=timer.ms,
                          cause=cause, fix=fix))
            return None if status in (404, 405, 406) or status >= 500 else False
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge:
            self.add(Step("unauthenticated", WARN, "401 without a WWW-Authenticate header", ms=timer.ms,
                          cause="Clients cannot learn how to authenticate (RFC 9110 requires the header on 401).",
                          fix="Server side: send 'WWW-Authenticate: Bearer resource_metadata=\"…\"'."))
            return False
        self.add(Step("unauthenticated", PASS, f"401 as expected; WWW-Authenticate: {challenge[:160]}",
                      ms=timer.ms))
        self._oauth_metadata(challenge)
        return False

    def _oauth_metadata(self, challenge: str) -> None:
        metadata_url = _challenge_param(challenge, "resource_metadata")
        if not metadata_url:
            self.add(Step("oauth-metadata", SKIP, "no resource_metadata in the challenge: OAuth discovery is not "
                          "offered (API tokens may still work)"))
            return
        with _Timer() as timer:
            document = self._get_json(metadata_url)
        if not isinstance(document, dict) or not document.get("resource"):
            self.add(Step("oauth-metadata", WARN, f"protected resource metadata at {metadata_url} is not usable",
                          ms=timer.ms, cause="OAuth clients cannot discover the authorization server (RFC 9728).",
                          fix="Server side: serve a JSON document with 'resource' and 'authorization_servers'."))
            return
        servers = document.get("authorization_servers") or []
        self.add(Step("oauth-metadata", PASS, f"resource {document['resource']}; authorization servers: "
                      f"{', '.join(servers) or 'none'}", ms=timer.ms, data={"resource_metadata": document}))
        for issuer in servers[:1]:
            with _Timer() as timer:
                base = issuer.rstrip("/")
                parts = urlsplit(base)
                candidates = [f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}",
                              f"{base}/.well-known/openid-configuration"]
                found = next(((url, doc) for url in candidates
                              if isinstance(doc := self._get_json(url), dict) and doc.get("token_endpoint")), None)
            if found is None:
                self.add(Step("oauth-server", WARN, f"no RFC 8414 metadata for {issuer}", ms=timer.ms,
                              cause="OAuth clients cannot find the token endpoint.",
                              fix="Server side: serve /.well-known/oauth-authorization-server."))
            else:
                url, doc = found
                self.add(Step("oauth-server", PASS, f"token endpoint {doc['token_endpoint']}; PKCE "
                              f"{', '.join(doc.get('code_challenge_methods_supported') or ['not advertised'])}",
                              ms=timer.ms, data={"metadata_url": url}))

    def _get_json(self, url: str) -> Any:
        try:
            response = self.http.get(url)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def _post_with_credentials(self) -> bool:
        """The credential, if any, must get past authentication before the SDK steps make sense."""
        if not self.headers:
            return True
        with _Timer() as timer:
            try:
                response = self._post(_initialize_message())
            except httpx.HTTPError as exc:
                self.add(Step("credentials", FAIL, _error_text(exc), ms=timer.ms))
                return False
        if response.status_code < 300:
            self.add(Step("credentials", PASS, f"the credential is accepted (HTTP {response.status_code})",
                          ms=timer.ms))
            self._end_session(response.headers.get("Mcp-Session-Id"))
            return True
        cause, fix = _http_fault(response, with_credentials=True)
        self.add(Step("credentials", FAIL, f"HTTP {response.status_code} with the credential", ms=timer.ms,
                      cause=cause, fix=fix))
        return False

    def _end_session(self, session_id: str | None) -> None:
        if session_id:
            try:
                self.http.delete(self.url, headers={**self.headers, "Mcp-Session-Id": session_id})
            except httpx.HTTPError:
                pass

    def _origin(self) -> None:
        """Browser-based clients (e.g. the MCP Inspector) always send Origin; a server must accept its own."""
        with _Timer() as timer:
            try:
                response = self._post(_initialize_message(), headers={"Origin": self.origin})
            except httpx.HTTPError as exc:
                self.add(Step("origin", FAIL, _error_text(exc), ms=timer.ms))
                return
        if response.status_code == 403:
            self.add(Step("origin", FAIL, f"a request with 'Origin: {self.origin}' is refused (403)", ms=timer.ms,
                          cause="The server refuses browser Origins, even its own: browser-based clients (the MCP "
                                "Inspector, web agents) cannot connect. " + _server_message(response),
                          fix="Server side: add the client's origin to the allowed origins (this product: "
                              "MCP_ALLOWED_ORIGINS); non-browser clients are unaffected."))
            return
        self._end_session(response.headers.get("Mcp-Session-Id"))
        self.add(Step("origin", PASS, f"'Origin: {self.origin}' accepted (HTTP {response.status_code})",
                      ms=timer.ms))

    # --- the SDK --------------------------------------------------------------------------------

    async def _protocol_steps(self) -> None:
        if Client is None:
            self.add(Step("sdk", FAIL, "the official MCP SDK (package mcp) is not installed",
                          cause="The protocol steps need it.", fix="pip install mcp==2.3.0"))
            return
        legacy = await self._era("legacy")
        stateless = await self._era(STATELESS_VERSION)
        if legacy.status == FAIL and stateless.status == FAIL:
            pass  # both fail: a client of either era cannot work
        elif legacy.status == FAIL:
            _soften(legacy, "Clients that only speak the handshake era (most today) cannot connect.")
        elif stateless.status == FAIL:
            _soften(stateless, "Clients that speak only 2026-07-28 cannot connect; handshake-era clients can.")
        if legacy.status == PASS:
            await anyio.to_thread.run_sync(self._get_stream)
        await self._http_sse()
        working = "legacy" if legacy.status == PASS else STATELESS_VERSION if stateless.status == PASS else None
        if working is not None:
            await self._tool_call(working, legacy.data.get("tools") or stateless.data.get("tools") or [])

    def _client(self, mode: str):
        http = httpx2.AsyncClient(headers=self.headers, timeout=httpx2.Timeout(self.timeout), verify=self.verify)
        client = Client(streamable_http_client(self.url, http_client=http), mode=mode, raise_exceptions=True,
                        client_info=Implementation(**DOCTOR_INFO), read_timeout_seconds=self.timeout)
        return client, http

    async def _era(self, mode: str) -> Step:
        name = "handshake" if mode == "legacy" else "stateless"
        what = "initialize + tools/list" if mode == "legacy" else "server/discover + tools/list"
        with _Timer() as timer:
            try:
                with anyio.fail_after(self.timeout * 3):
                    # "auto" is how SDK clients reach 2026-07-28: probe server/discover, else fall back to initialize.
                    client, http = self._client("legacy" if mode == "legacy" else "auto")
                    async with http, client:
                        version = client.protocol_version
                        if mode != "legacy" and version != mode:
                            raise _NotSpoken(f"server/discover was not answered; the client fell back to "
                                             f"initialize ({version})")
                        tools = await _all_tools(client)
                        server = _server_label(client.server_info)
            except BaseException as exc:  # noqa: BLE001  (any failure is the finding)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                step = Step(name, FAIL, f"{what} failed: {_error_text(exc)}", ms=0,
                            cause=_sdk_cause(exc, mode), fix=_sdk_fix(exc, mode))
                step.ms = timer_ms(timer)
                return self.add(step)
        label = server or "server without serverInfo"
        return self.add(Step(name, PASS, f"{what}: {label}, protocol {version}, {len(tools)} tools",
                             ms=timer.ms, data={"protocol_version": version, "tools": tools}))

    def _get_stream(self) -> None:
        """Handshake era: open the session's GET stream the way clients do; 405 (no stream) is fine too."""
        with _Timer() as timer:
            try:
                initialized = self._post(_initialize_message())
                session_id = initialized.headers.get("Mcp-Session-Id")
                session = {"Mcp-Session-Id": session_id} if session_id else {}
                version = {"MCP-Protocol-Version": LEGACY_VERSION}
                self._post(_rpc("notifications/initialized", id_=None), headers={**session, **version})
                with self.http.stream("GET", self.url, headers={**self.headers, **session, **version,
                                                                "Accept": "text/event-stream"}) as response:
                    status, kind = response.status_code, response.headers.get("Content-Type", "")
                    message = "" if status == 200 else _server_message(_read(response))
            except httpx.HTTPError as exc:
                self.add(Step("get-stream", FAIL, _error_text(exc), ms=timer_ms(timer)))
                return
        self._end_session(session_id)
        if status == 200 and kind.startswith("text/event-stream"):
            self.add(Step("get-stream", PASS, "GET opened an event stream", ms=timer.ms))
        elif status == 405:
            self.add(Step("get-stream", PASS, "GET answered 405: the server offers no stream (allowed)", ms=timer.ms))
        elif status == 406:
            self.add(Step("get-stream", FAIL, "GET with 'Accept: text/event-stream' answered 406", ms=timer.ms,
                          cause="The server refuses the GET stream with 406 Not Acceptable. Clients open that "
                                "stream after initialize and treat anything but 200 or 405 as an error "
                                "(a known cause of 'client connects, then disconnects'). " + message,
                          fix="Server side: answer the GET with text/event-stream, or 405 Method Not Allowed "
                              "when there is no stream (MCP Streamable HTTP, 'Listening for Messages')."))
        else:
            self.add(Step("get-stream", FAIL, f"GET answered {status} {kind}".strip(), ms=timer.ms,
                          cause="Clients expect 200 text/event-stream or 405. " + message,
                          fix="Server side: answer the GET with an event stream or 405."))

    async def _http_sse(self) -> None:
        """The HTTP+SSE transport of 2024-11-05, where the server offers one (<url>/sse, else /sse)."""
        candidates = [self.url.rstrip("/") + "/sse", f"{self.origin}/sse"]
        for url in dict.fromkeys(candidates):
            with _Timer() as timer:
                probe = await anyio.to_thread.run_sync(self._probe_sse, url)
                if probe is None:
                    continue
                status, said = probe
                if status == 503:  # the optional older transport is off (e.g. no Redis): Streamable HTTP is enough
                    self.add(Step("http+sse", WARN, f"GET {urlsplit(url).path} answered 503", ms=timer_ms(timer),
                                  cause="The server offers HTTP+SSE but cannot serve it right now. " + said,
                                  fix="Use the Streamable HTTP URL; clients that only speak HTTP+SSE (e.g. "
                                      "Mistral's MCPClientSSE) need the server side fixed as the message says."))
                    return
                if status != 200:
                    self.add(Step("http+sse", FAIL, f"GET {urlsplit(url).path} answered {status}",
                                  ms=timer_ms(timer), cause="The HTTP+SSE endpoint exists but refuses the stream. "
                                  + said, fix="Check the credential and that the client accepts text/event-stream."))
                    return
                try:
                    with anyio.fail_after(self.timeout * 3):
                        async with sse_client(url, headers=self.headers, timeout=self.timeout,
                                              sse_read_timeout=self.timeout * 3) as (read, write):
                            async with ClientSession(read, write) as session:
                                initialized = await session.initialize()
                                tools = await session.list_tools()
                except BaseException as exc:  # noqa: BLE001
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    self.add(Step("http+sse", FAIL, f"{urlsplit(url).path}: {_error_text(exc)}", ms=timer_ms(timer),
                                  cause="The stream opened but the session failed (often a proxy that buffers "
                                        "the event stream, or POSTs routed to another server).",
                                  fix="Disable response buffering for the stream (nginx: X-Accel-Buffering: no) "
                                      "and keep the messages endpoint on the same server."))
                    return
            self.add(Step("http+sse", PASS, f"{urlsplit(url).path}: protocol {initialized.protocol_version}, "
                          f"{len(tools.tools)} tools", ms=timer.ms))
            return
        self.add(Step("http+sse", SKIP, "no HTTP+SSE endpoint (the 2024-11-05 transport is optional)"))

    def _probe_sse(self, url: str) -> tuple[int, str] | None:
        """(status, what the server said when it refused) of the HTTP+SSE GET, or None when there is none."""
        try:
            with self.http.stream("GET", url, headers={**self.headers, "Accept": "text/event-stream"}) as response:
                status = response.status_code
                said = "" if status == 200 else _said(response.read()[:2000])
        except httpx.HTTPError:
            return None
        return None if status in (404, 405) else (status, said)

    async def _tool_call(self, mode: str, tools: list[dict]) -> None:
        name, arguments = self.tool, self.arguments or {}
        if name is None:
            harmless = sorted((t for t in tools if _harmless(t)),
                              key=lambda t: len((t.get("inputSchema") or {}).get("properties") or {}))
            if not harmless:
                self.add(Step("tools/call", SKIP, "no tool named (--tool) and none is read-only without required "
                              "arguments"))
                return
            name = harmless[0]["name"]
        with _Timer() as timer:
            try:
                with anyio.fail_after(self.timeout * 3):
                    client, http = self._client(mode)
                    async with http, client:
                        result = await client.call_tool(name, arguments)
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.add(Step("tools/call", FAIL, f"{name}: {_error_text(exc)}", ms=timer_ms(timer),
                              cause="The server refused the call (unknown tool, no permission, or a protocol "
                                    "error).",
                              fix="Check the tool name in tools/list and that the credential may call it."))
                return
        text = " ".join(getattr(block, "text", "") for block in result.content)[:160]
        if result.is_error and self.tool is None:
            self.add(Step("tools/call", WARN, f"{name} (picked as harmless) answered with a tool error: {text}",
                          ms=timer.ms, cause="The call went through; the tool itself reported a failure.",
                          fix="Name a tool to try with --tool NAME [--arguments JSON]."))
        elif result.is_error:
            self.add(Step("tools/call", FAIL, f"{name} returned an error: {text}", ms=timer.ms,
                          cause="The tool ran and reported a failure (its arguments, or its own backend).",
                          fix="Give arguments with --arguments '{\"…\": …}', or check the tool's configuration."))
        else:
            self.add(Step("tools/call", PASS, f"{name} ({mode}): {text or 'ok'}", ms=timer.ms))


def _server_label(info) -> str:
    return f"{info.name} {info.version or ''}".strip() if info is not None else ""


class _NotSpoken(Exception):
    """The server answered, but not in the protocol era being checked."""


def _harmless(tool: dict) -> bool:
    """Read-only and callable with no arguments at all (MCP annotations; JSON Schema of the input)."""
    schema = tool.get("inputSchema") or {}
    return ((tool.get("annotations") or {}).get("readOnlyHint") is True and not schema.get("required")
            and not schema.get("minProperties") and not any(k in schema for k in ("anyOf", "oneOf", "allOf")))


def timer_ms(timer: _Timer) -> float:
    return round((time.perf_counter() - timer.started) * 1000, 1)


def _read(response: httpx.Response) -> httpx.Response:
    response.read()
    return response


async def _all_tools(client) -> list[dict]:
    tools, cursor = [], None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools += [tool.model_dump(by_alias=True, exclude_none=True) for tool in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _soften(step: Step, consequence: str) -> None:
    step.status = WARN
    step.cause = f"{consequence} {step.cause}".strip()


def _sdk_cause(exc: BaseException, mode: str) -> str:
    text = _error_text(exc)
    if "401" in text or "403" in text:
        return "The credential was refused during the session."
    if "406" in text:
        return "The server refused the client's Accept header."
    if mode != "legacy" and ("_NotSpoken" in text or "-32601" in text or "not found" in text.lower() or "-32022" in text
                             or "Unsupported" in text):
        return "The server does not speak 2026-07-28 (no server/discover)."
    if mode == "legacy" and ("-32601" in text or "initialize" in text.lower()):
        return "The server does not speak the handshake era (no initialize)."
    if "TimeoutError" in text or "timed out" in text.lower():
        return "No answer in time: a proxy may be buffering the event stream, or the server is overloaded."
    return "The SDK client could not complete the exchange."


def _sdk_fix(exc: BaseException, mode: str) -> str:
    cause = _sdk_cause(exc, mode)
    if "credential" in cause:
        return "Check the token and its permissions."
    if "Accept" in cause:
        return f"Server side: accept '{ACCEPT_BOTH}'."
    if "does not speak" in cause:
        return "Use a client mode the server supports (the other era), or upgrade the server."
    if "No answer" in cause:
        return "Disable proxy buffering for text/event-stream answers; check the server's load."
    return "Run again with --json for the full error, and compare with the server's logs."


def _challenge_param(challenge: str, name: str) -> str:
    """The value of ``name="…"`` in a WWW-Authenticate challenge."""
    marker = f'{name}="'
    start = challenge.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = challenge.find('"', start)
    return challenge[start:end] if end > start else ""


def render_text(report: Report) -> str:
    """One line per step (status, name, timing, summary), with cause and fix under failures and warnings."""
    marks = {PASS: "PASS", FAIL: "FAIL", WARN: "WARN", SKIP: "skip"}
    lines = [f"mcp_doctor {report.url}"]
    for step in report.steps:
        timing = f"{step.ms:>7.1f} ms" if step.ms else " " * 10
        lines.append(f"  {marks[step.status]}  {step.name:<16}{timing}  {step.summary}")
        if step.status in (FAIL, WARN):
            if step.cause:
                lines.append(f"        cause: {step.cause}")
            if step.fix:
                lines.append(f"        fix:   {step.fix}")
    verdict = "every step a client needs passed" if report.ok else "a client will fail: see FAIL above"
    lines.append(f"Result: {verdict}.")
    return "\n".join(lines)


def _said(body: bytes) -> str:
    """The message a refusal carried (JSON-RPC error, REST error or detail), else its first line, trimmed."""
    try:
        payload = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return ("Server said: " + text.splitlines()[0][:200]) if text and not text.startswith("<") else ""
    if isinstance(payload, dict):
        error = payload.get("error")
        message = error.get("message") if isinstance(error, dict) else error or payload.get("detail")
        return f"Server said: {str(message)[:300]}" if message else ""
    return ""
