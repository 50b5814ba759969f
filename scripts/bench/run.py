"""`make bench`: this product vs the official SDK vs a bare-Django floor, on this machine, in one run.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/mcp_bench; it is dropped and
re-created), BENCH_REDIS_URL, BENCH_SECONDS per measurement (10), BENCH_CONNECTIONS ("1,16,64"),
BENCH_RSS_CALLS (100000), BENCH_QUICK=1 (3 s per measurement, 5,000 RSS calls), BENCH_WORKERS (2).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import httpx

from .common import BIN, REPO, Load, ensure_wrk, free_port, rss_kib, server, wrk

QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = float(os.environ.get("BENCH_SECONDS", "3" if QUICK else "10"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "1,16,64").split(",")]
RSS_CALLS = int(os.environ.get("BENCH_RSS_CALLS", "5000" if QUICK else "100000"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mcp_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
MCP_ACCEPT = "application/json, text/event-stream"
STATELESS = "2026-07-28"
HANDSHAKE = "2025-11-25"
META = {"io.modelcontextprotocol/protocolVersion": STATELESS, "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"}}

ENV = {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "DJANGO_SETTINGS_MODULE": "scripts.bench.bench_settings",
       "WEB_CONCURRENCY": WORKERS, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}


def prepare(*args) -> dict:
    completed = subprocess.run([sys.executable, "-m", "scripts.bench.prepare", *args], cwd=REPO,
                               env={**os.environ, **ENV}, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def rpc(method, params, *, id_=1, meta=True):
    params = dict(params)
    if meta:
        params["_meta"] = META
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


def stateless_headers(token, method, name=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": MCP_ACCEPT,
               "MCP-Protocol-Version": STATELESS, "Mcp-Method": method}
    if name:
        headers["Mcp-Name"] = name
    return headers


def handshake_session(url, token) -> dict | None:
    """Open a handshake-era session; the headers to reuse it, or None when the server does not do it."""
    base = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": MCP_ACCEPT}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    try:
        response = httpx.post(url + "/mcp", json=init, headers=base, timeout=10)
        session = response.headers.get("Mcp-Session-Id")
        if response.status_code != 200 or not session:
            return None
        headers = {**base, "Mcp-Session-Id": session, "MCP-Protocol-Version": HANDSHAKE}
        httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers,
                   timeout=10)
        return headers
    except httpx.HTTPError:
        return None


def check(url, method, path, body, headers) -> str:
    """'' when one request answers 200 with a success body, else why not."""
    try:
        response = httpx.request(method, url + path, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        return f"request failed: {exc}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    text = response.text
    if '"error"' in text[:200] or '"success": false' in text or '"isError":true' in text.replace(" ", ""):
        return f"error reply: {text[:200]}"
    return ""


def measure(url, method, path, body=None, headers=None) -> dict[int, Load]:
    results = {}
    for connections in CONNECTIONS:
        wrk(url + path, connections=connections, seconds=1, method=method, body=body, headers=headers)  # warm
        results[connections] = wrk(url + path, connections=connections, seconds=SECONDS, method=method, body=body,
                                   headers=headers)
        print(f"    {connections:>3} conns: {results[connections].rps:>9,.0f} rps  p50 {results[connections].p50_ms:6.2f} ms"
              f"  p99 {results[connections].p99_ms:6.2f} ms  errors {results[connections].errors}", flush=True)
    return results


def walk_tools(url, headers_for, page_limit=1000) -> tuple[float, float, int]:
    """p50 of the first tools/list page and of a full cursor walk (ms), over a few repetitions."""
    first, full, count = [], [], 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(5 if QUICK else 15):
            started = time.perf_counter()
            cursor, count, pages = None, 0, 0
            while True:
                params = {"cursor": cursor} if cursor else {}
                reply = client.post("/mcp", content=rpc("tools/list", params), headers=headers_for()).json()
                pages += 1
                if pages == 1:
                    first.append((time.perf_counter() - started) * 1000)
                count += len(reply["result"]["tools"])
                cursor = reply["result"].get("nextCursor")
                if not cursor or pages >= page_limit:
                    break
            full.append((time.perf_counter() - started) * 1000)
    return statistics.median(first), statistics.median(full), count


def _stop(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")  # unwinds the `server` blocks, which stop their servers


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    ensure_wrk()
    started = time.time()
    print(f"Preparing the bench database ({DATABASE_URL.rsplit('/', 1)[-1]}) ...", flush=True)
    seeded = prepare("--reset")
    token, email = seeded["token"], seeded["email"]
    results: dict = {"config": {"seconds": SECONDS, "connections": CONNECTIONS, "workers": WORKERS,
                                "rss_calls": RSS_CALLS, "cores": os.cpu_count()}, "targets": {}, "notes": []}
    rest_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    echo_body = json.dumps({"name": "echo", "arguments": {"message": "hello"}}).encode()
    sql_body = json.dumps({"name": "get_customer_by_email", "arguments": {"email": email}}).encode()
    call_echo = rpc("tools/call", {"name": "echo", "arguments": {"message": "hello"}})

    port = free_port()
    gunicorn = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                "mcp_project.wsgi"]
    with server("ours", gunicorn, port=port, env=ENV) as ours:
        targets = [
            ("ours REST invoke echo", "POST", "/mcp/v1/tools/invoke", echo_body, rest_headers),
            ("ours REST invoke get_customer_by_email", "POST", "/mcp/v1/tools/invoke", sql_body, rest_headers),
            ("ours REST tools list", "GET", "/mcp/v1/tools", None, {"Authorization": f"Bearer {token}"}),
        ]
        mcp_present = httpx.post(ours.url + "/mcp", content=rpc("tools/list", {}),
                                 headers=stateless_headers(token, "tools/list"), timeout=10).status_code != 404
        if mcp_present:
            targets += [
                ("ours MCP 2026-07-28 tools/call echo", "POST", "/mcp", call_echo,
                 stateless_headers(token, "tools/call", "echo")),
                ("ours MCP 2026-07-28 tools/list", "POST", "/mcp", rpc("tools/list", {}),
                 stateless_headers(token, "tools/list")),
            ]
            session = handshake_session(ours.url, token)
            if session:
                targets += [
                    ("ours MCP handshake tools/call echo", "POST", "/mcp",
                     rpc("tools/call", {"name": "echo", "arguments": {"message": "hello"}}, meta=False), session),
                    ("ours MCP handshake tools/list", "POST", "/mcp", rpc("tools/list", {}, meta=False), session),
                ]
            else:
                results["targets"]["ours MCP handshake tools/call echo"] = "n/a (no session from initialize)"
        else:
            for name in ("ours MCP 2026-07-28 tools/call echo", "ours MCP 2026-07-28 tools/list",
                         "ours MCP handshake tools/call echo", "ours MCP handshake tools/list"):
                results["targets"][name] = "n/a (endpoint not present)"
        targets.append(("floor: bare Django view + 1 audit INSERT", "POST", "/bench/floor", call_echo,
                        {"Content-Type": "application/json"}))
        for name, method, path, body, headers in targets:
            problem = check(ours.url, method, path, body, headers)
            print(f"  {name}" + (f": SKIPPED ({problem})" if problem else ""), flush=True)
            if problem:
                results["targets"][name] = f"n/a ({problem[:120]})"
                continue
            results["targets"][name] = measure(ours.url, method, path, body, headers)

        # Memory: the web workers' RSS before and after RSS_CALLS invocations.
        pids = ours.worker_pids()
        before = rss_kib(pids)
        done = 0
        print(f"  RSS: {RSS_CALLS:,} echo invocations ...", flush=True)
        while done < RSS_CALLS:
            load = wrk(ours.url + "/mcp/v1/tools/invoke", connections=16, seconds=min(20, max(2, SECONDS)),
                       method="POST", body=echo_body, headers=rest_headers)
            done += load.requests
        after = rss_kib(ours.worker_pids())
        results["rss"] = {"calls": done, "before_kib": before, "after_kib": after,
                          "growth_pct": 100 * (after - before) / before if before else 0.0, "workers": len(pids)}
        print(f"    {done:,} calls: {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
              f"({results['rss']['growth_pct']:+.1f}%)", flush=True)

        # tools/list with 1,000 tools.
        count = prepare("--extra-tools", "1000")["tools"]
        print(f"  tools/list with {count} tools", flush=True)
        rest_list = wrk(ours.url + "/mcp/v1/tools", connections=16, seconds=SECONDS,
                        headers={"Authorization": f"Bearer {token}"})
        listing = {"tools": count, "rest_full_list_16c": rest_list}
        if mcp_present:
            try:
                first, full, walked = walk_tools(ours.url, lambda: stateless_headers(token, "tools/list"))
                listing.update({"mcp_first_page_p50_ms": first, "mcp_full_walk_p50_ms": full, "mcp_walked": walked})
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                listing["mcp"] = f"n/a ({exc})"
        else:
            listing["mcp"] = "n/a (endpoint not present)"
        single = []
        with httpx.Client(base_url=ours.url, timeout=30) as client:
            for _ in range(30):
                t0 = time.perf_counter()
                client.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
                single.append((time.perf_counter() - t0) * 1000)
        listing["rest_full_list_p50_ms_1c"] = statistics.median(single)
        results["tools_list_1000"] = listing

    # The official SDK, stateless JSON, 1 and 2 workers; keep the best at 16 connections.
    sdk_runs = {}
    for workers in (1, 2):
        port = free_port()
        argv = [str(BIN / "uvicorn"), "--factory", "scripts.bench.sdk_server:app_factory", "--port", str(port),
                "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        with server(f"sdk-w{workers}", argv, port=port, env={}, ready_path="/mcp") as sdk:
            headers = {"Content-Type": "application/json", "Accept": MCP_ACCEPT, "MCP-Protocol-Version": STATELESS,
                       "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
            problem = check(sdk.url, "POST", "/mcp", call_echo, headers)
            print(f"  SDK MCPServer stateless JSON, {workers} worker(s)" + (f": FAILED {problem}" if problem else ""),
                  flush=True)
            if not problem:
                sdk_runs[workers] = measure(sdk.url, "POST", "/mcp", call_echo, headers)
    if sdk_runs:
        best = max(sdk_runs, key=lambda w: sdk_runs[w][16 if 16 in CONNECTIONS else CONNECTIONS[0]].rps)
        results["targets"][f"SDK MCPServer echo (stateless JSON, best: {best} worker(s))"] = sdk_runs[best]
        results["sdk_best_workers"] = best
    results["elapsed_s"] = time.time() - started
    report(results)
    return 0


def report(results):
    targets = results["targets"]
    lines = ["", f"Benchmark ({results['config']['cores']} cores, {SECONDS:g} s per cell, wrk, same connections for "
             f"every target; ours = gunicorn.conf.py with {WORKERS} workers):", ""]
    header = "| target | " + " | ".join(f"{c} conn rps | p50 ms | p99 ms" for c in CONNECTIONS) + " |"
    lines += [header, "|---" * (1 + 3 * len(CONNECTIONS)) + "|"]
    for name, value in targets.items():
        if isinstance(value, str):
            lines.append(f"| {name} | " + " | ".join([value] + [""] * (3 * len(CONNECTIONS) - 1)) + " |")
        else:
            lines.append(f"| {name} | " + " | ".join(" | ".join(value[c].cells()) for c in CONNECTIONS) + " |")
    sdk = next((v for k, v in targets.items() if k.startswith("SDK") and not isinstance(v, str)), None)
    floor = targets.get("floor: bare Django view + 1 audit INSERT")
    lines += ["", "| ratio (rps) | " + " | ".join(f"{c} conn" for c in CONNECTIONS) + " |",
              "|---" * (1 + len(CONNECTIONS)) + "|"]
    for name in ("ours MCP 2026-07-28 tools/call echo", "ours MCP handshake tools/call echo", "ours REST invoke echo"):
        ours = targets.get(name)
        if ours is None or isinstance(ours, str):
            continue
        for label, base in (("SDK", sdk), ("floor", floor)):
            if base is None or isinstance(base, str):
                continue
            lines.append(f"| {name} / {label} | " + " | ".join(
                f"{ours[c].rps / base[c].rps:.2f}x" if base[c].rps else "-" for c in CONNECTIONS) + " |")
    listing = results.get("tools_list_1000", {})
    if listing:
        lines += ["", f"tools/list with {listing['tools']} tools: REST full list (no paging) "
                      f"p50 {listing['rest_full_list_p50_ms_1c']:.1f} ms at 1 conn, "
                      f"{listing['rest_full_list_16c'].rps:,.0f} rps / p99 {listing['rest_full_list_16c'].p99_ms:.1f} ms "
                      f"at 16 conns; MCP: " + (listing["mcp"] if "mcp" in listing else
                      f"first page p50 {listing['mcp_first_page_p50_ms']:.1f} ms, full walk ({listing['mcp_walked']} "
                      f"tools) p50 {listing['mcp_full_walk_p50_ms']:.1f} ms")]
    rss = results.get("rss")
    if rss:
        lines.append(f"Web worker RSS ({rss['workers']} workers): {rss['before_kib'] / 1024:.1f} MiB before, "
                     f"{rss['after_kib'] / 1024:.1f} MiB after {rss['calls']:,} calls ({rss['growth_pct']:+.1f}%).")
    lines.append(f"Elapsed: {results['elapsed_s']:.0f} s.")
    text = "\n".join(lines)
    print(text)
    out_dir = REPO / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"bench-{stamp}.md").write_text(text + "\n")
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(results, default=lambda o: o.__dict__, indent=2))
    print(f"Saved var/bench/bench-{stamp}.md and .json")


if __name__ == "__main__":
    sys.exit(main())
