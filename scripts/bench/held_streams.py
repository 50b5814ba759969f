"""Held streams: /health and tools/call while many idle MCP streams are held open (the held-streams issue).

Opens N real idle streams of the three kinds, mixed in equal parts (GET /mcp/sse, a handshake session's
GET /mcp, subscriptions/listen), then measures /health (4 connections) and the REST tools invoke
(16 connections) against the same server with none held, alternating held/none ROUNDS times, and prints
medians with the load average. Each candidate is a server configuration of the same app:

* "gthread 2x16 (caps)": today's production defaults; beyond the caps streams get 503 (counted).
* "gthread 2xT": threads sized for the streams (T = N/2 + MCP_STREAM_WORKERS + reserve per worker).

    BENCH_DATABASE_URL=... BENCH_REDIS_URL=... python -m scripts.bench.held_streams
    (the bench database prepared by `python -m scripts.bench.prepare --reset`; BENCH_TOKEN from its output)
"""
import json
import os
import socket
import statistics
import sys
import time

from .common import BIN, free_port, server, wrk

HELD = int(os.environ.get("BENCH_HELD", "1000"))
ROUNDS = int(os.environ.get("BENCH_HELD_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_HELD_SECONDS", "5"))
ONLY = [part for part in os.environ.get("BENCH_HELD_ONLY", "").split(",") if part]  # name fragments to run
IDLE_PATH = "/bench/idle-stream"  # scripts/bench/split_app.py's floor endpoint


def candidates(port: int):
    gunicorn = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                "mcp_project.wsgi"]
    sized = HELD // 2 + 4 + 2 + 2
    uvicorn = [str(BIN / "uvicorn"), "scripts.bench.split_app:application", "--port", str(port), "--workers", "2",
               "--log-level", "warning", "--no-access-log"]
    return [
        ("gthread 2x16 (caps)", gunicorn, {"GUNICORN_THREADS": "16"}),
        # The design's floor: idle streams as coroutines (scripts/bench/split_app.py), not the product's streams.
        ("split ASGI: uvicorn 2 x (coroutine streams + 8 WSGI threads)", uvicorn, {"SPLIT_WSGI_THREADS": "8"}),
        # A thread keeps its database connection for DB_CONN_MAX_AGE: with hundreds of threads that exhausts
        # Postgres' max_connections (measured: "too many clients" at 2x508), so this candidate runs with 0.
        (f"gthread 2x{sized}", gunicorn, {"GUNICORN_THREADS": str(sized), "MCP_HELD_STREAMS_PER_TOKEN": str(HELD),
                                          "MCP_LISTEN_MAX_STREAMS": str(HELD), "DB_CONN_MAX_AGE": "0"}),
    ]


def _raw(url: str, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[socket.socket, int]:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
                 + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return sock, int(data.split(b" ", 2)[1]) if data else 0


def hold_idle(url: str, count: int) -> tuple[list[socket.socket], int]:
    """``count`` idle streams of the split-ASGI candidate's floor endpoint."""
    held, refused = [], 0
    for _ in range(count):
        sock, status = _raw(url, "GET", IDLE_PATH, {"Accept": "text/event-stream"})
        if status == 200:
            held.append(sock)
        else:
            refused += 1
            sock.close()
    return held, refused


def hold(url: str, secret: str, count: int) -> tuple[list[socket.socket], int]:
    """Open ``count`` idle streams, a third of each kind; returns the open sockets and how many were refused."""
    import urllib.request

    auth = {"Authorization": f"Bearer {secret}"}
    listen = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "notifications": {"toolsListChanged": True}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}}}).encode()
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}).encode()
    held, refused = [], 0
    for index in range(count):
        kind = index % 3
        if kind == 0:
            sock, status = _raw(url, "GET", "/mcp/sse", {**auth, "Accept": "text/event-stream"})
        elif kind == 1:
            request = urllib.request.Request(url + "/mcp", data=init, method="POST", headers={
                **auth, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
            with urllib.request.urlopen(request, timeout=30) as response:
                session = response.headers["Mcp-Session-Id"]
            sock, status = _raw(url, "GET", "/mcp", {**auth, "Accept": "text/event-stream", "Mcp-Session-Id": session,
                                                     "MCP-Protocol-Version": "2025-11-25"})
        else:
            sock, status = _raw(url, "POST", "/mcp", {
                **auth, "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"}, listen)
        if status == 200:
            held.append(sock)
        else:
            refused += 1
            sock.close()
    return held, refused


def main():
    token = json.loads(os.environ["BENCH_TOKEN"]) if os.environ.get("BENCH_TOKEN", "").startswith("{") else None
    secret = token["token"] if token else os.environ["BENCH_TOKEN"]
    body = json.dumps({"name": "echo", "arguments": {"message": "hello"}}).encode()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    print(f"held streams: {HELD} (mixed sse/get/listen), {ROUNDS} alternating rounds of {SECONDS:.0f} s, medians")
    print("| server | held | refused | /health p99 ms | invoke rps | invoke p99 ms | load avg |")
    print("|---|---|---|---|---|---|---|")
    for index in range(len(candidates(0))):
        port = free_port()
        name, argv, extra = candidates(port)[index]
        if ONLY and not any(part in name for part in ONLY):
            continue
        env = {"DJANGO_SETTINGS_MODULE": "scripts.bench.bench_settings", "WEB_CONCURRENCY": "2",
               "LOG_LEVEL": "WARNING", "MCP_LISTEN_MAX_S": "3600",
               # Streams opened together would re-check their credentials together (a database query each).
               "MCP_SSE_PING_INTERVAL_S": "3600", **extra}
        with server(name, argv, port=port, env=env) as srv:
            wrk(srv.url + "/health", connections=4, seconds=1)  # warm up
            results = {0: [], HELD: []}
            refused_seen = 0
            for _ in range(ROUNDS):
                for count in (0, HELD):
                    sockets, refused = hold_idle(srv.url, count) if name.startswith("split") else \
                        hold(srv.url, secret, count)
                    refused_seen = max(refused_seen, refused)
                    time.sleep(1)
                    health = wrk(srv.url + "/health", connections=4, seconds=SECONDS)
                    invoke = wrk(srv.url + "/mcp/v1/tools/invoke", connections=16, seconds=SECONDS, method="POST",
                                 body=body, headers=headers)
                    results[count].append((health.p99_ms, invoke.rps, invoke.p99_ms, health.errors + invoke.errors))
                    for sock in sockets:
                        sock.close()
                    time.sleep(2)
            load = os.getloadavg()[0]
            for count, rows in results.items():
                med = [statistics.median(r[i] for r in rows) for i in range(3)]
                errors = sum(r[3] for r in rows)
                print(f"| {name} | {count} | {refused_seen if count else 0} | {med[0]:.1f} | {med[1]:,.0f}"
                      f"{f' ({errors} err)' if errors else ''} | {med[2]:.1f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
