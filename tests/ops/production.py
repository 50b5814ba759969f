"""The production smoke's machinery: a venv from requirements.txt alone, and the Procfile's processes.

The venv lives in .cache/production-venv/<hash of requirements.txt and the Python version>, built once
and reused while requirements.txt does not change (older ones are removed). Builds are serialised with
a file lock, so two test runs on one machine do not build it twice.
"""
from __future__ import annotations

from contextlib import contextmanager
import fcntl
import hashlib
import json
import os
from pathlib import Path
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "production-venv"


def procfile(path: Path = REPO / "Procfile") -> dict[str, str]:
    """{process type: command line} of a Procfile (``name: command`` lines; ``#`` comments)."""
    processes = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().isidentifier():
            raise ValueError(f"Not a Procfile line: {line!r}")
        processes[name.strip()] = command.strip()
    return processes


def production_venv(requirements: Path = REPO / "requirements.txt", cache: Path = CACHE) -> Path:
    """A venv with requirements.txt installed and nothing else; returns its directory."""
    digest = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = cache / digest
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        for old in cache.iterdir():
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        # Scripts in a venv name its path in their #! line: build it where it will be used.
        base_python = getattr(sys, "_base_executable", None) or sys.executable
        _run([base_python, "-m", "venv", str(venv)], "creating the production venv")
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "-r", str(requirements)], "pip install -r requirements.txt")
        (venv / ".complete").write_text(digest + "\n")
    return venv


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{tail(result.stdout + result.stderr)}")


def tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines, JSON log records shown as ``LEVEL logger: message`` plus their traceback's end."""
    shown = []
    for line in text.rstrip().splitlines()[-lines:]:
        try:
            record = json.loads(line)
        except ValueError:
            shown.append(line)
            continue
        if not isinstance(record, dict):
            shown.append(line)
            continue
        shown.append(f"{record.get('level', '')} {record.get('logger', '')}: {record.get('message', '')}")
        if record.get("exc_info"):
            shown.extend("    " + part for part in str(record["exc_info"]).splitlines()[-12:])
    return "\n".join(shown)


def clean_environment(venv: Path, extra: dict[str, str]) -> dict[str, str]:
    """What a production host gives the processes: the venv on PATH and only the settings we name."""
    keep = {key: os.environ[key] for key in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if key in os.environ}
    return {**keep, "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1", **extra}


class Process:
    """One Procfile process, run as a shell would run its line, with output in a log file."""

    def __init__(self, name: str, command: str, env: dict[str, str]):
        self.name, self.command = name, command
        self.log = tempfile.NamedTemporaryFile(prefix=f"smoke-{name}-", suffix=".log", delete=False)
        self.popen = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], cwd=REPO, env=env,
                                      stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, settle_s: float = 0.0) -> str:
        """What it printed so far; with ``settle_s``, first wait (up to 5 s) until it stops printing."""
        path = Path(self.log.name)
        deadline = time.monotonic() + (5 if settle_s else 0)
        size = -1
        while settle_s and time.monotonic() < deadline and path.stat().st_size != size:
            size = path.stat().st_size
            time.sleep(settle_s)
        return path.read_text(errors="replace")

    def describe_death(self) -> str:
        return (f"`{self.name}` ({self.command}) exited with code {self.popen.returncode}. Last lines of its "
                f"output:\n{tail(self.output(settle_s=0.2), 12)}")

    def stop(self) -> None:
        if self.alive:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()


def run_once(name: str, command: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run a one-off process (e.g. the Procfile's release) to completion; RuntimeError with its output if it fails."""
    result = subprocess.run(["/bin/sh", "-c", f"exec {command}"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"`{name}` ({command}) exited with code {result.returncode}:\n"
                           f"{tail(result.stdout + result.stderr)}")
    return result.stdout


@contextmanager
def processes():
    """Started processes, all stopped (process group and children) on the way out."""
    started: dict[str, Process] = {}
    try:
        yield started
    finally:
        for process in started.values():
            process.stop()


def quote(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)
