"""Hostile JSON *text* (hypothesis strategies) and the five doors that receive it, spoken over real sockets.

The text is written by hand, not by ``json.dumps``, so it can hold what a serialiser never emits:
``1e400``, ``NaN``, integers beyond 64 bits, ``\\u0000`` and unpaired surrogate escapes in values and
member names, duplicate member names, nesting around and far beyond the depth limit, and wrong
types at every level of a tool call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import itertools
import json
import os
from pathlib import Path
import queue
import subprocess
import sys
import threading
import time

import httpx
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]

# --- the text ----------------------------------------------------------------------------------------------

HOSTILE_STRINGS = ['"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"x\\udfff"', '"\\udc00\\ud800"',
                   '"\\ud83d\\ude00"',  # a valid pair: accepted
                   '"mcp_abcdefgh_' + "A" * 43 + '"', '""']
HOSTILE_NUMBERS = ["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", str(2**63), str(-(2**63) - 1),
                   str(2**63 - 1), str(-(2**63)), "1" + "0" * 400, "1" + "0" * 5000, "-0", "0.1", "1E308",
                   "12345678901234567890.5"]
plain_strings = st.text(max_size=12).map(lambda s: json.dumps(s))
strings = st.one_of(st.sampled_from(HOSTILE_STRINGS), plain_strings)
keys = st.one_of(st.sampled_from(['"a"', '"a"', '"b"', '"title"', '"description"', '"token"']), strings)
hostile_scalars = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(-(2**70), 2**70).map(str),
                            st.sampled_from(HOSTILE_STRINGS))
everyday_scalars = st.one_of(st.sampled_from(["null", "true", "false"]), st.integers(-1000, 10**6).map(str),
                             st.floats(allow_nan=False, allow_infinity=False).map(json.dumps), plain_strings)
# Mostly everyday values with a hostile one among them, so most calls parse and reach the pipeline too.
scalars = st.one_of(everyday_scalars, everyday_scalars, everyday_scalars, hostile_scalars)


def _obj(members):
    return "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"


values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
                            st.lists(st.tuples(keys, inner), max_size=4).map(_obj)),
    max_leaves=10,
)


@st.composite
def deep(draw, inner=values):
    depth = draw(st.sampled_from([62, 63, 64, 65, 66, 200, 5000]))
    kind = draw(st.sampled_from(["[]", '{"a":}']))
    core = draw(inner)
    if kind == "[]":
        return "[" * depth + core + "]" * depth
    return '{"a":' * depth + core + "}" * depth


any_value = st.one_of(values, values, values, values, values, deep())
TOOL_NAMES = ["echo", "create_ticket", "get_ticket", "list_tickets", "database_query", "no_such_tool"]
tool_names = st.sampled_from(TOOL_NAMES).map(json.dumps)
names = st.one_of(tool_names, tool_names, tool_names, tool_names, st.sampled_from(HOSTILE_STRINGS), scalars,
                  st.just('"echo\\u0000"'), st.just('"' + "x" * 300 + '"'))
# Arguments: objects of the tools' real fields with hostile values, or anything at all (wrong types).
fields = st.lists(st.tuples(st.sampled_from(['"title"', '"description"', '"text"', '"id"', '"priority"',
                                             '"status"', '"query"', '"limit"']), values), max_size=4).map(_obj)
arguments = st.one_of(fields, fields, fields, fields, any_value)


@dataclass
class Call:
    """One hostile tools/call: its pieces as JSON text, and how they are put together."""

    name: str
    arguments: str | None
    shape: str  # "call": a normal envelope; "raw": ``arguments`` is the whole body / params
    extra: list = field(default_factory=list)  # extra members (duplicates of name/arguments, hostile _meta)


hostile_calls = st.builds(
    Call, name=names, arguments=st.one_of(st.none(), arguments),
    shape=st.sampled_from(["call"] * 6 + ["raw"]),
    extra=st.one_of(st.just([]), st.just([]), st.just([]),
                    st.lists(st.tuples(st.sampled_from(['"name"', '"arguments"', '"_meta"', '"\\u0000"']), any_value),
                             min_size=1, max_size=1)),
)
everyday_values = st.recursive(
    everyday_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
                            st.lists(st.tuples(plain_strings, inner), max_size=3).map(_obj)),
    max_leaves=6,
)
everyday_fields = st.lists(st.tuples(st.sampled_from(['"title"', '"description"', '"text"', '"id"', '"priority"',
                                                      '"status"', '"limit"']), everyday_values),
                           max_size=3, unique_by=lambda pair: pair[0]).map(_obj)
# Calls that parse (wrong types and unknown names included), so the pipeline's every outcome is reached.
everyday_calls = st.builds(Call, name=tool_names, arguments=st.one_of(everyday_fields, everyday_values),
                           shape=st.just("call"))
# One call in three is hostile text; the others parse and reach the tools.
calls = st.one_of(everyday_calls, everyday_calls, hostile_calls)


def members(call: Call) -> list[tuple[str, str]]:
    pairs = [('"name"', call.name)]
    if call.arguments is not None:
        pairs.append(('"arguments"', call.arguments))
    return pairs + list(call.extra)


# --- answers ----------------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int | None  # HTTP status (None on stdio)
    messages: list  # JSON-RPC messages answering the request (MCP doors) or [REST body]
    answered_calls: int  # tool calls that reached the pipeline: each must leave one audit row


# REST refusals made by the view before the pipeline (not tool calls, not audited).
REST_REQUEST_REFUSALS = ("Malformed JSON body", "The body must be a JSON object", "Missing 'name'",
                         "Tool arguments must be a JSON object", "Request body is larger", "Send the body as JSON")


def rest_answer(response: httpx.Response) -> Answer:
    body = response.json()
    answered = 0
    if "success" in body and not (response.status_code in (400, 413, 415)
                                  and str(body.get("error", "")).startswith(REST_REQUEST_REFUSALS)):
        answered = 1
    return Answer(response.status_code, [body], answered)


def jsonrpc_answered(messages: list, request_id) -> int:
    """1 if a tools/call with ``request_id`` got its result, or an "Unknown tool" refusal (after the pipeline)."""
    for message in messages:
        if request_id is not None and message.get("id") == request_id and not isinstance(message.get("id"), bool):
            if "result" in message:
                return 1
            if str(message.get("error", {}).get("message", "")).startswith("Unknown tool"):
                return 1
    return 0


# --- the doors --------------------------------------------------------------------------------------------

_ids = itertools.count(1)


def fresh_id() -> int:
    return next(_ids)


def mcp_body(call: Call, meta: dict | None = None) -> tuple[str, object]:
    """A JSON-RPC tools/call body as text, with a fresh id (so answers are matched by id)."""
    request_id = fresh_id()
    if call.shape == "raw":
        params = call.arguments if call.arguments is not None else call.name
    else:
        params_members = members(call)
        if meta is not None:
            params_members.append(('"_meta"', json.dumps(meta)))
        params = _obj(params_members)
    return f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":{params}}}', request_id


def rest_body(call: Call) -> str:
    if call.shape == "raw":
        return call.arguments if call.arguments is not None else call.name
    return _obj(members(call))


def sse_messages(response: httpx.Response) -> list:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return [response.json()] if response.content else []


class RestDoor:
    transport = "rest"

    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})

    def send(self, call: Call) -> Answer:
        return self.exchange(rest_body(call))

    def exchange(self, body: str, request_id=None) -> Answer:
        response = self.client.post("/mcp/v1/tools/invoke", content=body.encode("utf-8", "surrogatepass"),
                                    headers={"Content-Type": "application/json"})
        return rest_answer(response)

    def close(self):
        self.client.close()


class HandshakeDoor:
    """/mcp in the 2025-11-25 era: one session, opened by initialize."""

    transport = "mcp"

    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(base_url=base_url, timeout=30, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"})
        init = self.client.post("/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}})
        assert init.status_code == 200, init.text
        self.session = init.headers["Mcp-Session-Id"]
        self.client.headers.update({"Mcp-Session-Id": self.session, "MCP-Protocol-Version": "2025-11-25"})
        assert self.client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202

    def send(self, call: Call) -> Answer:
        return self.exchange(*mcp_body(call))

    def exchange(self, body: str, request_id) -> Answer:
        response = self.client.post("/mcp", content=body.encode("utf-8", "surrogatepass"),
                                    headers={"Content-Type": "application/json"})
        messages = sse_messages(response)
        return Answer(response.status_code, messages, jsonrpc_answered(messages, request_id))

    def close(self):
        self.client.close()


STATELESS_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {},
                  "io.modelcontextprotocol/clientInfo": {"name": "hostile", "version": "1"}}


class StatelessDoor(HandshakeDoor):
    """/mcp in the 2026-07-28 revision: no session, the version in _meta and headers."""

    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(base_url=base_url, timeout=30, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"})

    def send(self, call: Call) -> Answer:
        try:
            name = json.loads(call.name)
        except ValueError:
            name = None
        return self.exchange(*mcp_body(call, meta=STATELESS_META), name=name)

    def exchange(self, body: str, request_id, name=None) -> Answer:
        headers = {"Content-Type": "application/json"}
        if isinstance(name, str) and name.isascii() and name.isprintable() and name.strip() == name and name:
            headers["Mcp-Name"] = name
        response = self.client.post("/mcp", content=body.encode("utf-8", "surrogatepass"), headers=headers)
        messages = sse_messages(response)
        return Answer(response.status_code, messages, jsonrpc_answered(messages, request_id))


class SseDoor:
    """/mcp/sse (HTTP+SSE, 2024-11-05): POSTs answered 202, the answers arrive on the open stream."""

    transport = "mcp-sse"

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(30, read=20), headers=self.headers)
        self.stream_cm = self.client.stream("GET", "/mcp/sse")
        self.stream = self.stream_cm.__enter__()
        assert self.stream.status_code == 200
        self.lines = self.stream.iter_lines()
        self.endpoint = self._next_event()[1]
        self.poster = httpx.Client(base_url=base_url, timeout=30, headers=self.headers)
        self.poster.post(self.endpoint, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}})
        self._until_id(0)
        self.poster.post(self.endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _next_event(self) -> tuple[str, str]:
        event, data = "message", []
        for line in self.lines:
            if line.startswith(":"):
                continue
            if line == "":
                if data:
                    return event, "\n".join(data)
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                event = value
            elif key == "data":
                data.append(value)
        raise EOFError("the SSE stream ended")

    def _until_id(self, request_id) -> list:
        seen = []
        while True:
            event, data = self._next_event()
            message = json.loads(data)
            seen.append(message)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return seen

    def send(self, call: Call) -> Answer:
        return self.exchange(*mcp_body(call))

    def exchange(self, body: str, request_id) -> Answer:
        response = self.poster.post(self.endpoint, content=body.encode("utf-8", "surrogatepass"),
                                    headers={"Content-Type": "application/json"})
        if response.status_code == 202:  # a request with a readable id: its answer comes on the stream
            messages = self._until_id(request_id)
        else:
            messages = [response.json()] if response.content else []
            if any(m.get("id") == request_id for m in messages):
                self._until_id(request_id)  # also sent on the stream: consume it
        return Answer(response.status_code, messages, jsonrpc_answered(messages, request_id))

    def close(self):
        self.stream_cm.__exit__(None, None, None)
        self.client.close()
        self.poster.close()


class StdioDoor:
    """``manage.py mcp_stdio`` as a subprocess, fed one line per call."""

    transport = "stdio"

    def __init__(self, env: dict, token: str):
        self.process = subprocess.Popen([sys.executable, "manage.py", "mcp_stdio"], cwd=REPO,
                                        env={**env, "MCP_TOKEN": token}, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._write(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}}))
        self._until(lambda m: m.get("id") == 0)
        self._write('{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def _write(self, text: str):
        self.process.stdin.write(text.encode("utf-8", "surrogatepass") + b"\n")
        self.process.stdin.flush()

    def _until(self, done, deadline_s: float = 30) -> list:
        seen, deadline = [], time.monotonic() + deadline_s
        while True:
            message = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(message)
            if done(message):
                return seen

    def send(self, call: Call) -> Answer:
        return self.exchange(*mcp_body(call))

    def exchange(self, body: str, request_id) -> Answer:
        sentinel = f"sentinel-{request_id}"
        self._write(body)
        self._write(json.dumps({"jsonrpc": "2.0", "id": sentinel, "method": "ping"}))
        messages = self._until(lambda m: m.get("id") == sentinel)
        # A parse or shape error (no id) is written by the reading loop before the ping is even read;
        # a request's answer may come after the ping's (requests run on a pool).
        if not any(m.get("id") == request_id or ("error" in m and m.get("id") is None) for m in messages):
            try:
                sent = json.loads(body)
                is_request = isinstance(sent, dict) and "method" in sent
            except ValueError:
                is_request = False
            if is_request:
                messages += self._until(lambda m: m.get("id") == request_id)
        return Answer(None, messages, jsonrpc_answered(messages, request_id))

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)
