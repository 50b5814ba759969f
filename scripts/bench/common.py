"""Shared pieces of the benchmark scripts: servers, the load generator (wrk), process memory."""
from contextlib import contextmanager
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LUA = Path(__file__).with_name("report.lua")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    """wrk from Debian's packages; installed with apt-get when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it with apt-get (Debian package 'wrk')", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk")


def http_status(url: str, timeout: float = 2.0, **kwargs) -> int | None:
    request = urllib.request.Request(url, **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path

    def worker_pids(self) -> list[int]:
        """The master's children (gunicorn/uvicorn workers), or the process itself when it has none."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except OSError:
            pids = []
        return pids or [self.process.pid]


@contextmanager
def server(name: str, argv: list[str], *, port: int, env: dict, ready_path: str = "/health", timeout: float = 60):
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while http_status(url + ready_path, timeout=1, method="GET") not in (200, 405, 406):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(name, url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def cells(self) -> tuple[str, str, str]:
        flag = f" ({self.errors} err)" if self.errors else ""
        return f"{self.rps:,.0f}{flag}", f"{self.p50_ms:.2f}", f"{self.p99_ms:.2f}"


def wrk(url: str, *, connections: int, seconds: float, method: str = "GET", body: bytes | None = None,
        headers: dict | None = None, threads: int | None = None) -> Load:
    threads = threads or min(connections, 2)
    env = {**os.environ, "WRK_METHOD": method,
           "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())}
    body_file = None
    if body is not None:
        body_file = tempfile.NamedTemporaryFile(prefix="wrk-body-", delete=False)
        body_file.write(body)
        body_file.close()
        env["WRK_BODY"] = body_file.name
    try:
        completed = subprocess.run(
            [ensure_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
             "-s", str(LUA), url], env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    finally:
        if body_file:
            os.unlink(body_file.name)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("WRK_JSON "))
    data = json.loads(line[len("WRK_JSON "):])
    errors = sum(data[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return Load(rps=data["requests"] / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000, requests=data["requests"], errors=errors)


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total
