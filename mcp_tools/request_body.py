"""Request bodies sent with ``Transfer-Encoding: chunked`` (no ``Content-Length``).

Django's WSGI request reads exactly ``CONTENT_LENGTH`` bytes, so a chunked body reads as empty
and every door answered "Malformed JSON". The WSGI server (gunicorn) decodes the chunks; this
middleware reads the decoded body up to one byte past ``MCP_MAX_BODY_BYTES`` and hands Django a
body of known length. A body over the limit gets its true (over-limit) length, so each door
answers 413 exactly as for an oversized ``Content-Length``.
"""
from io import BytesIO

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream

_CHUNK = 65_536


def _read_up_to(stream, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit:
        part = stream.read(min(_CHUNK, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


class ChunkedBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        environ = getattr(request, "environ", None)
        if ("chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get("CONTENT_LENGTH")
                and environ is not None and "wsgi.input" in environ and not getattr(request, "_read_started", False)):
            body = _read_up_to(environ["wsgi.input"], settings.MCP_MAX_BODY_BYTES + 1)
            meta["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(BytesIO(body), len(body))
        return self.get_response(request)
