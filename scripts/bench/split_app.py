"""A candidate server design for held streams (benchmark only): one ASGI app per worker that serves idle
streams as coroutines and hands every other request to the Django WSGI app on a thread pool (a2wsgi).

Not Django's ASGI handler: it runs sync views on a single thread (measured 120-220 rps). The idle stream here
is the design's floor, an SSE reply that waits for the client's disconnect with a keep-alive every 15 s; the
product's streams would add one shared Redis subscription per worker (redis.asyncio) fanning events out.

    uvicorn scripts.bench.split_app:application --workers 2
"""
import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scripts.bench.bench_settings")

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

IDLE_PATH = "/bench/idle-stream"
KEEPALIVE_S = 15.0
_wsgi = WSGIMiddleware(get_wsgi_application(), workers=int(os.environ.get("SPLIT_WSGI_THREADS", "8")))


async def _idle_stream(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    await send({"type": "http.response.body", "body": b": open\n\n", "more_body": True})
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout=KEEPALIVE_S)
        except asyncio.TimeoutError:
            await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
            continue
        if message["type"] == "http.disconnect":  # the client left: nothing is held any more
            return


async def application(scope, receive, send) -> None:
    if scope["type"] == "http" and scope["path"] == IDLE_PATH:
        await _idle_stream(scope, receive, send)
    else:
        await _wsgi(scope, receive, send)
