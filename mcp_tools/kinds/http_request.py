"""Call an internal HTTP API (the API-gateway pattern).

The admin fixes base URL, method and path template; the caller's arguments fill
the path placeholders and the query string or JSON body. The target's address
is checked before connecting: loopback, private, link-local and reserved
addresses are refused unless the admin lists the host in ``allowed_hosts``.
Redirects are not followed. The caller's own credentials are never forwarded.
"""
import ipaddress
import json
import socket
from string import Formatter
from urllib.parse import quote, urlsplit

import httpx

from ..exceptions import ToolError, ToolTimeout
from .base import HandlerKind, register

# One pooled client for the process: connections are reused across calls.
_CLIENT = httpx.Client(follow_redirects=False, trust_env=False, headers={"User-Agent": "django-mcp-tools"})


def address_refusal(host: str, port: int, allowed_hosts: list[str]) -> str | None:
    """Why connecting to ``host`` is refused, or None when it may be contacted."""
    if host.lower() in {h.lower() for h in allowed_hosts} or f"{host}:{port}".lower() in {
            h.lower() for h in allowed_hosts}:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"Host '{host}' could not be resolved."
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address.is_loopback or address.is_private or address.is_link_local or address.is_reserved \
                or address.is_multicast or address.is_unspecified:
            return (f"Host '{host}' resolves to a non-public address ({address}); an administrator must add it "
                    "to the tool's allowed_hosts.")
    return None


@register
class HttpRequestKind(HandlerKind):
    name = "http_request"
    label = "HTTP request to an internal API"
    atomic = False  # never hold a transaction across network I/O
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["base_url"],
        "properties": {
            "base_url": {"type": "string", "pattern": "^https?://"},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET"},
            "path": {"type": "string", "default": "", "description": "Template like /customers/{customer_id}"},
            "send_arguments_as": {"enum": ["query", "json", "none"], "default": "json"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "allowed_hosts": {"type": "array", "items": {"type": "string"}},
            "max_response_bytes": {"type": "integer", "minimum": 1, "maximum": 10_000_000, "default": 1_000_000},
        },
    }

    def run(self, arguments, config, context):
        path_fields = [f for _, f, _, _ in Formatter().parse(config.get("path", "")) if f]
        missing = [f for f in path_fields if f not in arguments]
        if missing:
            raise ToolError(f"Missing path argument(s): {', '.join(missing)}.")
        path = config.get("path", "").format(**{f: quote(str(arguments[f]), safe="") for f in path_fields})
        rest = {k: v for k, v in arguments.items() if k not in path_fields}
        url = config["base_url"].rstrip("/") + path
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        refusal = address_refusal(parts.hostname or "", port, config.get("allowed_hosts", []))
        if refusal:
            raise ToolError(refusal)
        send_as = config.get("send_arguments_as", "json")
        method = config.get("method", "GET")
        limit = int(config.get("max_response_bytes", 1_000_000))
        request = _CLIENT.build_request(
            method, url, headers=config.get("headers") or {}, timeout=context.timeout_s,
            params=rest if send_as == "query" else None,
            json=rest if send_as == "json" and method != "GET" else None,
        )
        try:
            response = _CLIENT.send(request, stream=True)
            try:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > limit:
                        raise ToolError(f"The upstream response is larger than {limit} bytes.")
            finally:
                response.close()
        except httpx.TimeoutException:
            raise ToolTimeout(f"The upstream API did not answer within {context.timeout_s:g}s.") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"Could not reach the upstream API: {type(exc).__name__}.") from None
        if response.is_redirect:
            raise ToolError(f"The upstream API answered with a redirect ({response.status_code}); "
                            "redirects are not followed.")
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        if response.status_code >= 400:
            raise ToolError(f"The upstream API answered {response.status_code}: {str(payload)[:500]}")
        return {"status": response.status_code, "data": payload}
