"""TEST ONLY: the dispatcher behind /mcp/conformance (on only with ``MCP_CONFORMANCE_FIXTURES``).

The suite's fixtures (``conformance_fixtures``) plus, in the stateless era, the tasks-extension
fixtures (``conformance_tasks``, which need Django; hence this separate module).
"""
from __future__ import annotations

from ..protocol import build_dispatcher
from ..protocol.versions import Era
from . import conformance_tasks
from .conformance_fixtures import ConformanceFixtures


class ConformanceBackend(ConformanceFixtures):
    def __init__(self):
        self.tasks = conformance_tasks.FixtureTasks()

    def list_tools(self, ctx):
        return self.tools + conformance_tasks.TOOLS if ctx.era is Era.STATELESS else self.tools

    def call_tool(self, ctx, name, arguments):
        if ctx.era is Era.STATELESS and name in conformance_tasks.TOOL_NAMES:
            return conformance_tasks.call(self.tasks, ctx, name, arguments)
        return super().call_tool(ctx, name, arguments)


def build_conformance_dispatcher(state_key: bytes):
    backend = ConformanceBackend()
    dispatcher = build_dispatcher(backend, server_info={"name": "mcp-tool-server-conformance", "version": "0.1.0"},
                                  state_key=state_key)
    return conformance_tasks.install(dispatcher, backend.tasks)
