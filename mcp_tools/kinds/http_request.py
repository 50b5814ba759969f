"""Call an internal HTTP API (the API-gateway pattern), safe against SSRF.

The admin fixes base URL, method and path template; the caller's arguments fill
the path placeholders (each percent-encoded, so they cannot change the host) and
the query string or JSON body.

The target host is resolved ONCE and every address it resolves to is checked:
loopback, private, link-local, shared, reserved, multicast and unspecified
addresses (IPv4-mapped, NAT64 and 6to4 forms included) are refused unless the
admin lists the host in ``allowed_hosts``; cloud metadata addresses are refused
always. The request then goes to the checked IP itself (Host header and TLS SNI
carry the name), so DNS cannot answer differently between check and connect.
Redirects are never followed. Timeouts, a total deadline and a response size cap
apply. The caller's own credentials are never forwarded; admin-set upstream
secrets (``secret_headers``) are sent upstream only, and scrubbed from anything
shown back.
"""
import base64
from dataclasses import dataclass
import ipaddress
import json
import re
import socket
from functools import lru_cache
from string import Formatter
import time
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import httpx

from ..exceptions import ToolError, ToolTimeout
from .base import HandlerKind, register

# One pooled client for the process: connections are reused across calls. No proxies from
# the environment (trust_env=False), no cookies kept between calls, no redirects.
_CLIENT = httpx.Client(follow_redirects=False, trust_env=False, headers={"User-Agent": "django-mcp-tools"})

# Instance metadata services: credentials live there. Never reachable, allow-listed or not.
CLOUD_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
    "169.254.170.2",    # AWS ECS task credentials
    "169.254.169.253",  # AWS DNS
    "fd00:ec2::254",    # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",      # Oracle Cloud
))
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
REDACTED = "[REDACTED]"
# A long download reports how far it is (MCP progress; on a worker, relayed to the waiting client).
PROGRESS_EVERY_S = 0.25
_HOP_BY_HOP = {"host", "connection", "content-length", "transfer-encoding", "upgrade", "te", "trailer",
               "proxy-authorization", "keep-alive"}


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address):
    """The IPv4 address hidden inside an IPv6 one (mapped, NAT64, 6to4, Teredo), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    return None


def address_problem(address) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is."""
    if address in CLOUD_METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded)
        return f"{problem} (embedded in {address})" if problem else None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def _host_allowed(host: str, port: int, allowed_hosts: list[str]) -> bool:
    allowed = {h.strip().lower().strip("[]") for h in allowed_hosts}
    return host.lower() in allowed or f"{host}:{port}".lower() in {h.lower() for h in allowed_hosts}


def target_resolve(*, host: str, port: int, allowed_hosts: list[str]) -> list[Target]:
    """Resolve ``host`` once; return the checked addresses to connect to, or raise ToolError saying why not."""
    if not host:
        raise ToolError("The tool's base_url has no host.")
    literal = host.strip("[]")
    try:
        addresses = [ipaddress.ip_address(literal)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise ToolError(f"Host '{host}' could not be resolved.") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise ToolError(f"Host '{host}' could not be resolved.")
    allow_listed = _host_allowed(host, port, allowed_hosts)
    for address in addresses:
        problem = address_problem(address)
        if problem is None:
            continue
        if address in CLOUD_METADATA_ADDRESSES or _embedded_ipv4(address) in CLOUD_METADATA_ADDRESSES:
            raise ToolError(f"Host '{host}' resolves to {problem} ({address}), which tools may never call.")
        if not allow_listed:
            raise ToolError(f"Host '{host}' resolves to {problem} ({address}); an administrator must add it "
                            "to the tool's allowed_hosts.")
    # Every address passed: only these may be connected to. IPv4 first, as most internal services listen there.
    return [Target(host=host, port=port, address=a) for a in sorted(addresses, key=lambda a: a.version)]


def _pinned_url(parts, target: Target) -> str:
    ip = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    default_port = 443 if parts.scheme == "https" else 80
    netloc = ip if target.port == default_port else f"{ip}:{target.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _received(count: int, expected: int | None) -> str:
    return f"Received {count:,} of {expected:,} bytes" if expected else f"Received {count:,} bytes"


def secret_values(config: dict) -> list[str]:
    return [v for v in (config.get("secret_headers") or {}).values() if isinstance(v, str) and v]


# Credential parts shorter than this are not scrubbed on their own (they would redact ordinary words).
_MIN_SECRET_PART = 8


def _secret_forms(secret: str) -> tuple[list[str], list[str]]:
    """(case-insensitive forms, exact forms) an upstream may echo ``secret`` in: as sent and its credential
    part ("Bearer <token>"), each also percent-encoded; and their base64 (standard, URL-safe, unpadded)."""
    parts = {secret} | {p for p in re.split(r"[\s:]+", secret) if len(p) >= _MIN_SECRET_PART}
    plain, exact = set(), set()
    for part in parts:
        plain |= {part, quote(part, safe=""), quote_plus(part)}
        for encoded in (base64.b64encode(part.encode()).decode(), base64.urlsafe_b64encode(part.encode()).decode()):
            exact |= {encoded, encoded.rstrip("=")}
    return sorted(plain), sorted(exact)


@lru_cache(maxsize=256)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern:
    alternatives = []
    for secret in secrets:
        plain, exact = _secret_forms(secret)
        alternatives += [(f, f"(?i:{re.escape(f)})") for f in plain] + [(f, re.escape(f)) for f in exact]
    # Longest first, so a whole echo is replaced rather than its credential part alone.
    return re.compile("|".join(p for _, p in sorted(alternatives, key=lambda a: len(a[0]), reverse=True)))


def scrub(value, secrets: list[str]):
    """``value`` with every admin secret replaced, wherever an upstream echoed it: as sent, in another
    letter case, percent-encoded or base64-encoded. Other transformations (hashes, partial echoes,
    other encodings) are not recognised."""
    if not secrets:
        return value
    if isinstance(value, str):
        return _secret_pattern(tuple(sorted(secrets))).sub(REDACTED, value)
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def path_template_problems(template: str) -> list[str]:
    """Why ``template`` is not a usable path template (must start with '/', placeholders named plainly)."""
    if not template:
        return []
    if not template.startswith("/"):
        return ["The path template must start with '/', so no argument can extend the host name."]
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return [f"The path template is not valid: {exc}."]
    problems = [f"Placeholder '{{{f}}}' must be a plain name (no format spec, conversion, index or attribute)."
                for f, spec, conv in fields if spec or conv or not f.isidentifier()]
    if "?" in template or "#" in template:
        problems.append("The path template may not hold '?' or '#'; arguments go to the query string or body.")
    return problems


def path_render(template: str, arguments: dict) -> str:
    """``template`` with each placeholder replaced by its argument as exactly one path segment.

    Every character outside RFC 3986's unreserved set is percent-encoded ('/' included); '.', '..'
    and empty values are refused (ToolError), since they would remove or merge segments. The result
    is checked to keep the template's literal parts in order.
    """
    pieces, values = [], {}
    for literal, field, _, _ in Formatter().parse(template):
        pieces.append(literal)
        if field is None:
            continue
        value = str(arguments[field])
        if value in ("", ".", ".."):
            raise ToolError(f"Argument '{field}' may not be {value!r}: it would change the request path.")
        values[field] = quote(value, safe="")
        pieces.append(values[field])
    path = "".join(pieces)
    literals = [literal for literal, _, _, _ in Formatter().parse(template)]
    position = 0
    for literal in literals:
        found = path.find(literal, position)
        if found < 0:
            raise ToolError("The arguments would change the request path's structure.")
        position = found + len(literal)
    return path


def _address_problems(parts, allowed_hosts: list[str]) -> list[str]:
    """Save-time: the base URL's host must resolve to public addresses, or be allow-listed (DNS only, no connect)."""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        target_resolve(host=parts.hostname, port=port, allowed_hosts=allowed_hosts)
    except ToolError as exc:
        if "could not be resolved" in exc.message:
            return []  # may resolve where the server runs; checked again on every call
        return [exc.message]
    return []


@register
class HttpRequestKind(HandlerKind):
    name = "http_request"
    label = "HTTP request to an internal API"
    atomic = False  # never hold a transaction across network I/O
    # Config keys whose values the admin never sees again once saved.
    secret_config_fields = ("secret_headers",)
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["base_url"],
        "properties": {
            "base_url": {"type": "string", "pattern": "^https?://", "title": "Base URL",
                         "description": "Scheme, host and optional port and path of the upstream API.",
                         "examples": ["https://api.example.com/v1"]},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET", "title": "Method"},
            "path": {"type": "string", "default": "", "title": "Path",
                     "description": "Appended to the base URL; starts with '/'. Each {name} is replaced by that argument "
                                    "percent-encoded as one path segment ('/', '?', '#' included); '.', '..' and "
                                    "empty values are refused, so an argument never changes the path's structure.",
                     "examples": ["/customers/{customer_id}"]},
            "send_arguments_as": {"enum": ["query", "json", "none"], "default": "json", "title": "Send arguments as",
                                  "description": "The arguments not used in the path: as the query string, "
                                                 "a JSON body, or not at all."},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}, "title": "Headers",
                        "description": "Fixed request headers, shown in the admin, e.g. Accept."},
            "secret_headers": {
                "type": "object", "additionalProperties": {"type": "string"}, "title": "Secret headers",
                "description": 'Upstream credentials, e.g. {"Authorization": "Bearer ..."}: sent upstream, never '
                               "shown again, logged or audited. Scrubbed from responses when echoed as sent, in "
                               "another letter case, percent-encoded or base64; not when hashed or otherwise "
                               "transformed.",
            },
            "allowed_hosts": {"type": "array", "items": {"type": "string"}, "title": "Allowed hosts",
                              "description": "Hosts on a private or loopback address that the tool may call "
                                             "anyway (an internal API): 'host' or 'host:port', no scheme. "
                                             "Public hosts need no entry; a base URL on a private address "
                                             "without an entry is refused when the tool is saved; cloud "
                                             "metadata addresses are never allowed.",
                              "examples": [["billing.internal", "127.0.0.1:8000"]]},
            "max_response_bytes": {"type": "integer", "minimum": 1, "maximum": 10_000_000, "default": 1_000_000,
                                   "title": "Max response bytes"},
        },
    }

    def check_config(self, config):
        parts = urlsplit(config.get("base_url", ""))
        problems = []
        if not parts.hostname:
            problems.append("base_url needs a host.")
        if parts.username or parts.password:
            problems.append("Put upstream credentials in secret_headers, not in base_url.")
        for name in list(config.get("headers") or {}) + list(config.get("secret_headers") or {}):
            if name.lower() in _HOP_BY_HOP:
                problems.append(f"Header '{name}' is set by the server and may not be configured.")
        problems += path_template_problems(config.get("path", ""))
        if parts.hostname and not problems:
            problems += _address_problems(parts, config.get("allowed_hosts") or [])
        return problems

    def run(self, arguments, config, context):
        deadline = time.monotonic() + context.timeout_s
        path_fields = [f for _, f, _, _ in Formatter().parse(config.get("path", "")) if f]
        missing = [f for f in path_fields if f not in arguments]
        if missing:
            raise ToolError(f"Missing path argument(s): {', '.join(missing)}.")
        path = path_render(config.get("path", ""), arguments)
        rest = {k: v for k, v in arguments.items() if k not in path_fields}
        parts = urlsplit(config["base_url"].rstrip("/") + path)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        targets = target_resolve(host=parts.hostname or "", port=port, allowed_hosts=config.get("allowed_hosts", []))
        secrets = secret_values(config)
        send_as = config.get("send_arguments_as", "json")
        method = config.get("method", "GET")
        limit = int(config.get("max_response_bytes", 1_000_000))
        host_header = parts.netloc.rpartition("@")[2]
        headers = {k: v for k, v in {**(config.get("headers") or {}), **(config.get("secret_headers") or {})}.items()
                   if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = host_header
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            response = None
            for index, target in enumerate(targets):
                request = _CLIENT.build_request(
                    method, _pinned_url(parts, target), headers=headers, timeout=context.timeout_s,
                    params=rest if send_as == "query" else None,
                    json=rest if send_as == "json" and method != "GET" else None, extensions=extensions,
                )
                try:
                    response = _CLIENT.send(request, stream=True)
                    break
                except httpx.ConnectError:
                    if index == len(targets) - 1:
                        raise
            try:
                if response.is_redirect:
                    raise ToolError(f"The upstream API answered with a redirect ({response.status_code}); "
                                    "redirects are not followed.")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ToolError(f"The upstream response is larger than {limit} bytes.")
                body = bytearray()
                expected = int(declared) if declared.isdigit() else None
                reported_at = time.monotonic()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise ToolError(f"The upstream response is larger than {limit} bytes.")
                    now = time.monotonic()
                    if now > deadline:
                        raise httpx.ReadTimeout("deadline")
                    if chunk and now - reported_at >= PROGRESS_EVERY_S:
                        reported_at = now
                        context.report_progress(len(body), expected, _received(len(body), expected))
            finally:
                response.close()
        except httpx.TimeoutException:
            raise ToolTimeout(f"The upstream API did not answer within {context.timeout_s:g}s.") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"Could not reach the upstream API: {type(exc).__name__}.") from None
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        payload = scrub(payload, secrets)
        if response.status_code >= 400:
            raise ToolError(f"The upstream API answered {response.status_code}: {str(payload)[:500]}")
        return {"status": response.status_code, "data": payload}
