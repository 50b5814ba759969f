"""Profile one gunicorn worker (py-spy, GIL samples = CPU time in Python) while wrk drives one request.

python -m scripts.bench.profile [target] [seconds]   (after `make bench` prepared the bench database; needs py-spy)

Targets: rest-invoke (default), rest-list, mcp-call (2026-07-28 tools/call echo), mcp-list (2026-07-28
tools/list, first page), handshake-call (tools/call echo in a handshake-era session).
Prints the functions with the largest inclusive and self share of samples.
"""
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from .common import BIN, free_port, server, wrk
from .run import ENV, handshake_session, prepare, rpc, stateless_headers

TARGETS = ("rest-invoke", "rest-list", "mcp-call", "mcp-list", "handshake-call")


def summarise(raw_path: str, top: int = 45) -> str:
    inclusive, own, total = collections.Counter(), collections.Counter(), 0
    for line in open(raw_path):
        stack, _, count = line.rstrip().rpartition(" ")
        if "handle_request" not in stack and "_WorkItem.run" not in stack:
            continue
        frames = [re.sub(r":\d+\)", ")", frame) for frame in stack.split(";")]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    lines = [f"{total} samples in request handling"]
    lines += [f"{100 * n / total:5.1f}% {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["--- self"] + [f"{100 * n / total:5.1f}% {frame}" for frame, n in own.most_common(20)]
    return "\n".join(lines)


def request_for(target: str, url: str, token: str) -> tuple[str, str, bytes | None, dict]:
    """(method, path, body, headers) of the request to drive."""
    call = {"name": "echo", "arguments": {"message": "hello"}}
    if target == "rest-invoke":
        return ("POST", "/mcp/v1/tools/invoke", json.dumps(call).encode(),
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if target == "rest-list":
        return "GET", "/mcp/v1/tools", None, {"Authorization": f"Bearer {token}"}
    if target == "mcp-call":
        return "POST", "/mcp", rpc("tools/call", call), stateless_headers(token, "tools/call", "echo")
    if target == "mcp-list":
        return "POST", "/mcp", rpc("tools/list", {}), stateless_headers(token, "tools/list")
    if target == "handshake-call":
        headers = handshake_session(url, token)
        return "POST", "/mcp", rpc("tools/call", call, meta=False), headers
    raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "rest-invoke"
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    token = prepare("--token")["token"]
    port = free_port()
    argv = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "mcp_project.wsgi"]
    with server("profile", argv, port=port, env={**ENV, "WEB_CONCURRENCY": "1"}) as web:
        [worker] = web.worker_pids()
        method, path, body, headers = request_for(target, web.url, token)
        url = web.url + path
        wrk(url, connections=8, seconds=2, method=method, body=body, headers=headers)
        out = tempfile.NamedTemporaryFile(prefix="profile-", suffix=".txt", delete=False).name
        load = {}
        driver = threading.Thread(target=lambda: load.setdefault("r", wrk(
            url, connections=8, seconds=seconds + 2, method=method, body=body, headers=headers)))
        driver.start()
        subprocess.run([spy, "record", "-p", str(worker), "-d", str(seconds), "-r", "250", "--gil", "-f", "raw",
                        "-o", out, "--nonblocking"], check=True, capture_output=True)
        driver.join()
    result = load["r"]
    print(f"{target}, 1 worker, 8 connections: {result.rps:,.0f} rps, p50 {result.p50_ms:.2f} ms, "
          f"p99 {result.p99_ms:.2f} ms, errors {result.errors}")
    print(summarise(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
