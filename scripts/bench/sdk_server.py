"""The official SDK's MCPServer serving the same echo tool, stateless with JSON replies (the bench's target 2).

Run: uvicorn --factory scripts.bench.sdk_server:app_factory --workers N
"""
from mcp.server.mcpserver import MCPServer


def build() -> MCPServer:
    server = MCPServer("bench-echo", log_level="WARNING")

    @server.tool()
    def echo(message: str) -> dict:
        """Returns its arguments."""
        return {"echo": {"message": message}}

    return server


def app_factory():
    return build().streamable_http_app(stateless_http=True, json_response=True)
