"""In-memory Backend for the protocol-layer tests: the conformance suite's fixtures, plus a few test hooks.

The fixtures themselves live in ``mcp_tools.transports.conformance_fixtures`` (no Django needed);
this subclass adds only what the tests here probe and /mcp/conformance must not serve.
"""
from __future__ import annotations

from mcp_tools.protocol import content as c
from mcp_tools.transports.conformance_fixtures import EMPTY, TOOLS, ConformanceFixtures


class FakeBackend(ConformanceFixtures):
    list_changed = frozenset({"tools"})
    tools = TOOLS + [
        {"name": "test_structured", "description": "Returns structured content", "inputSchema": EMPTY,
         "title": "Structured", "outputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        {"name": "test_crash", "description": "Raises an unexpected exception", "inputSchema": EMPTY},
    ]

    def __init__(self) -> None:
        self.subscribed: list[str] = []

    def tool_test_structured(self, ctx, args):
        return c.tool_result(structured={"n": 7})

    def tool_test_crash(self, ctx, args):
        raise KeyError("secret internal detail")

    def tool_test_sampling(self, ctx, args):
        # Unlike the fixture (InputRequired), a direct server-to-client request: the tests check that it
        # works in the handshake era and is impossible in the stateless one.
        reply = ctx.send_request("sampling/createMessage", {
            "messages": [{"role": "user", "content": {"type": "text", "text": args.get("prompt", "")}}],
            "maxTokens": 100,
        })
        return c.tool_result([c.text(f"LLM response: {reply['content']['text']}")])

    def read_resource(self, ctx, uri):
        if uri == "test://empty":  # no contents: the dispatcher must answer "not found"
            return []
        return super().read_resource(ctx, uri)

    def subscribe(self, ctx, uri):
        self.subscribed.append(uri)

    def unsubscribe(self, ctx, uri):
        self.subscribed.remove(uri)
