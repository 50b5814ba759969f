"""Does a server starve when MCP-style SSE replies hold connections open?

For each candidate production server (same app, same settings) it opens N
held SSE connections, then measures /health and the REST invoke under load
while they are held. Prints one table; the conclusion is in the README.

python -m scripts.bench.sse_starvation   (uses the bench database; run `make bench` once first or
                                           python -m scripts.bench.prepare --reset)
"""
import json
import os
import socket
import sys
import time

from .common import BIN, free_port, server, wrk

SECONDS = float(os.environ.get("BENCH_SSE_SECONDS", "4"))
HELD = [int(n) for n in os.environ.get("BENCH_SSE_HELD", "0,16,64").split(",")]
THREADS = os.environ.get("BENCH_SSE_THREADS", "8")
ONLY = os.environ.get("BENCH_SSE_ONLY", "")  # e.g. "gthread" to measure only that candidate


def candidates(port):
    bind = f"127.0.0.1:{port}"
    gunicorn = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"]
    return [
        (f"gunicorn gthread 2x{THREADS}", gunicorn + ["--bind", bind, "mcp_project.wsgi"], "/bench/hold-sync"),
        ("gunicorn asgi (native) x2", gunicorn + ["--bind", bind, "-k", "asgi", "mcp_project.asgi"],
         "/bench/hold-async"),
        ("uvicorn x2", [str(BIN / "uvicorn"), "mcp_project.asgi:application", "--port", str(port), "--workers", "2",
                        "--log-level", "warning", "--no-access-log"], "/bench/hold-async"),
    ]


def hold(url: str, path: str, count: int, seconds: float) -> list[socket.socket]:
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(f"GET {path}?s={seconds + 30} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        sockets.append(sock)
    return sockets


def main():
    token = json.loads(os.environ["BENCH_TOKEN"]) if os.environ.get("BENCH_TOKEN", "").startswith("{") else None
    secret = token["token"] if token else os.environ["BENCH_TOKEN"]
    body = json.dumps({"name": "echo", "arguments": {"message": "hello"}}).encode()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    env = {"DJANGO_SETTINGS_MODULE": "scripts.bench.bench_settings", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": THREADS,
           "LOG_LEVEL": "WARNING"}
    print("| server | held SSE connections | /health rps (4 conns) | /health p99 ms | errors | "
          f"REST invoke rps (16 conns) | invoke p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for index in range(len(candidates(0))):
        port = free_port()
        name, argv, hold_path = candidates(port)[index]
        if ONLY and ONLY not in name:
            continue
        with server(name, argv, port=port, env=env) as srv:
            wrk(srv.url + "/health", connections=4, seconds=1)  # warm up
            for count in HELD:
                sockets = hold(srv.url, hold_path, count, SECONDS * 3)
                time.sleep(0.5)
                health = wrk(srv.url + "/health", connections=4, seconds=SECONDS)
                invoke = wrk(srv.url + "/mcp/v1/tools/invoke", connections=16, seconds=SECONDS, method="POST",
                             body=body, headers=headers)
                for sock in sockets:
                    sock.close()
                print(f"| {name} | {count} | {health.rps:,.0f} | {health.p99_ms:.1f} | {health.errors} | "
                      f"{invoke.rps:,.0f} | {invoke.p99_ms:.1f} | {invoke.errors} |", flush=True)
                time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
