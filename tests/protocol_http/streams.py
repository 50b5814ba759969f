"""Long-lived MCP streams read on a thread, so a test can act while they are open."""
from __future__ import annotations

import json
import threading

import httpx

from tests.protocol_http.helpers import STATELESS, rpc, stateless_meta


class RawListen:
    """A raw subscriptions/listen stream read line by line on a thread (so the test can act meanwhile)."""

    def __init__(self, url: str, secret: str, notifications: dict):
        self.message = rpc("subscriptions/listen", {"notifications": notifications, "_meta": stateless_meta()})
        self.messages: list[dict] = []
        self.status = None
        self.content_type = ""
        headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream",
                   "Content-Type": "application/json", "MCP-Protocol-Version": STATELESS,
                   "Mcp-Method": "subscriptions/listen"}
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()

    def _read(self, url, headers):
        with httpx.stream("POST", url, headers=headers, content=json.dumps(self.message), timeout=60) as response:
            self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    self.messages.append(json.loads(line[6:]))

    def methods(self) -> list[str]:
        return [m.get("method", "<response>") for m in self.messages]


class SessionStream(RawListen):
    """A raw GET stream of a handshake session."""

    def __init__(self, url: str, secret: str, session_id: str):
        self.messages, self.status, self.content_type, self.raw = [], None, "", []
        headers = {"Authorization": f"Bearer {secret}", "Accept": "text/event-stream", "Mcp-Session-Id": session_id,
                   "MCP-Protocol-Version": "2025-11-25"}
        self.thread = threading.Thread(target=self._get, args=(url, headers), daemon=True)
        self.thread.start()

    def _get(self, url, headers):
        with httpx.stream("GET", url, headers=headers, timeout=60) as response:
            self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
            for line in response.iter_lines():
                self.raw.append(line)
                if line.startswith("data: "):
                    self.messages.append(json.loads(line[6:]))
