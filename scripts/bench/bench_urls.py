"""Bench-only endpoints, mounted beside the product's own URLs (never in production settings).

/bench/floor      the floor: parse a JSON-RPC tools/call body, write one audit row, answer. Nothing else.
/bench/hold-sync  an SSE reply held open for ?s= seconds by a sync view (a thread per connection)
/bench/hold-async the same from an async view (a coroutine per connection, under ASGI)
"""
import asyncio
import json
import time

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from mcp_tools.models import AuditEvent


@csrf_exempt
def floor(request):
    try:
        message = json.loads(request.body)
        params = message["params"]
        name, arguments = params["name"], params.get("arguments", {})
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "bad body"}},
                            status=400)
    AuditEvent.objects.create(tool_name=name, transport="bench", method="tools/call", arguments=arguments,
                              outcome="ok", duration_ms=0.0, request_id=request.request_id)
    return JsonResponse({"jsonrpc": "2.0", "id": message.get("id"),
                         "result": {"content": [{"type": "text", "text": json.dumps({"echo": arguments})}],
                                    "isError": False}})


def _seconds(request) -> float:
    try:
        return min(float(request.GET.get("s", "10")), 120.0)
    except ValueError:
        return 10.0


def hold_sync(request):
    seconds = _seconds(request)

    def events():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            yield b"event: ping\ndata: {}\n\n"
            time.sleep(0.5)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


async def hold_async(request):
    seconds = _seconds(request)

    async def events():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            yield b"event: ping\ndata: {}\n\n"
            await asyncio.sleep(0.5)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


def ok(request):
    return HttpResponse(b"ok")


urlpatterns = [
    path("bench/floor", floor),
    path("bench/hold-sync", hold_sync),
    path("bench/hold-async", hold_async),
    path("bench/ok", ok),
    path("", include("mcp_project.urls")),
]
