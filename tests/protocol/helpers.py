"""Shared test helpers: schema validation against the official MCP JSON Schemas."""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema

STATE_KEY = b"test-state-key-0123456789abcdef"


def schema_judge() -> str:
    """Which JSON Schemas judge the messages: the official files named by MCP_SCHEMA_DIR, or the SDK's."""
    directory = os.environ.get("MCP_SCHEMA_DIR")
    if directory:
        return f"official MCP schema.json files in {Path(directory).resolve()} (MCP_SCHEMA_DIR)"
    from scripts.mcp_sdk_schema import CACHE, describe

    return f"{describe()}, in {CACHE} (MCP_SCHEMA_DIR is not set)"


@functools.lru_cache(maxsize=None)
def schema_dir() -> Path:
    """``MCP_SCHEMA_DIR`` (must hold ``<revision>/schema.json``), else the SDK-generated stand-in (made once)."""
    directory = os.environ.get("MCP_SCHEMA_DIR")
    if directory:
        path = Path(directory).resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"MCP_SCHEMA_DIR={directory} is not a directory of <revision>/schema.json")
        return path
    from scripts.mcp_sdk_schema import ensure

    return ensure()


@functools.lru_cache(maxsize=None)
def _document(version: str) -> dict[str, Any]:
    return json.loads((schema_dir() / version / "schema.json").read_text())


@functools.lru_cache(maxsize=None)
def _validator(version: str, name: str):
    doc = _document(version)
    defs_key = "$defs" if "$defs" in doc else "definitions"
    if name not in doc[defs_key]:
        raise KeyError(f"{name} is not defined in the {version} schema")
    schema = {"$ref": f"#/{defs_key}/{name}", defs_key: doc[defs_key]}
    cls = jsonschema.Draft202012Validator if "2020-12" in doc.get("$schema", "") else jsonschema.Draft7Validator
    return cls(schema)


def assert_valid(version: str, name: str, instance: Any) -> None:
    """Fail with the schema's own message when ``instance`` is not a valid ``name``.

    An error envelope whose request id was unknown carries ``"id": null`` (JSON-RPC 2.0 section 5);
    the MCP schemas cannot express that one case, so such an id is checked here and the rest by the schema.
    """
    if name in ("JSONRPCError", "JSONRPCErrorResponse", "JSONRPCMessage") and isinstance(instance, dict) \
            and "error" in instance and "id" in instance and instance["id"] is None:
        instance = {**instance, "id": 0}
    errors = sorted(_validator(version, name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name} ({version}) invalid: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


def error_def(version: str) -> str:
    return "JSONRPCError" if version in ("2025-03-26", "2025-06-18") else "JSONRPCErrorResponse"


def assert_valid_response(version: str, result_def: str, envelope: dict[str, Any]) -> None:
    """Validate a success envelope and its result."""
    assert "result" in envelope, envelope
    assert_valid(version, "JSONRPCResultResponse" if version >= "2025-11-25" else "JSONRPCResponse", envelope)
    assert_valid(version, result_def, envelope["result"])


def assert_valid_error(version: str, envelope: dict[str, Any], code: int) -> None:
    assert "error" in envelope, envelope
    assert envelope["error"]["code"] == code, envelope
    assert_valid(version, error_def(version), envelope)


class RecordingOutbound:
    """Outbound that records notifications and answers client requests from a script."""

    def __init__(self, replies: dict[str, Any] | None = None) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.replies = replies or {}
        self.cancelled = False

    def send_notification(self, message: dict[str, Any]) -> None:
        self.notifications.append(message)

    def send_request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        self.requests.append(message)
        reply = self.replies[message["method"]]
        return reply(message) if callable(reply) else reply

    def is_cancelled(self) -> bool:
        return self.cancelled


def rpc(method: str, params: dict[str, Any] | None = None, id: Any = 1) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()


def note(method: str, params: dict[str, Any] | None = None) -> bytes:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()
