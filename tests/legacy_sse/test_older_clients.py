"""Older clients on the HTTP+SSE door, with the real client libraries, against real gunicorn.

* the TypeScript SDK 1.9.0 speaks only 2024-11-05: /mcp/sse negotiates it and sends only what it defines;
* mistralai 3.7.0's ``get_tools()`` reads one tools/list page: on HTTP+SSE every tool comes in one page, and an
  endpoint's admin-set page size (0: one page) serves it over Streamable HTTP too.
"""
import asyncio
import json
import os
from pathlib import Path
import shutil
import subprocess

from mistralai.extra.mcp.sse import MCPClientSSE, SSEServerParams
from mistralai.extra.mcp.streamable_http import MCPClientStreamableHTTP, StreamableHTTPServerParams
import pytest

from mcp_tools.models import McpEndpoint, Tool

pytestmark = pytest.mark.django_db(transaction=True)

HERE = Path(__file__).resolve().parent
SDK_VERSION = "1.9.0"
# Fields 2024-11-05 does not define (added by 2025-03-26 or later).
NEWER_TOOL_FIELDS = {"title", "outputSchema", "annotations", "icons", "execution"}


def _node() -> str:
    candidates = [os.environ.get("NODE"), shutil.which("node"),
                  str(HERE.parents[1] / ".cache" / "conformance" / "node" / "bin" / "node")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("no Node.js on this machine")


@pytest.fixture(scope="session")
def sdk19(tmp_path_factory) -> Path:
    """@modelcontextprotocol/sdk@1.9.0 from the npm registry, in a throwaway directory (not in git)."""
    cached = Path(os.environ.get("MCP_TS_SDK19_DIR", "/tmp/mcp-ts-sdk-1.9.0"))
    if not (cached / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json").exists():
        cached.mkdir(parents=True, exist_ok=True)
        (cached / "package.json").write_text('{"name": "sdk19-client", "private": true, "type": "module"}')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"@modelcontextprotocol/sdk@{SDK_VERSION}"],
                       cwd=cached, check=True, capture_output=True, timeout=300)
    shutil.copy(HERE / "node" / "sdk19_client.mjs", cached / "sdk19_client.mjs")
    return cached


def test_typescript_sdk_1_9_negotiates_2024_11_05_on_http_sse(server_a, tools, all_tools_token, sdk19):
    Tool.objects.filter(name="echo").update(title="Echo", annotations={"readOnlyHint": True},
                                             output_schema={"type": "object"})
    from mcp_tools.services.lookup_cache import lookup_cache_bump

    lookup_cache_bump()
    run = subprocess.run([_node(), "sdk19_client.mjs", f"{server_a.url}/mcp/sse", all_tools_token],
                         cwd=sdk19, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    initialize = next(m for m in seen["received"] if "protocolVersion" in m.get("result", {}))
    assert initialize["result"]["protocolVersion"] == "2024-11-05"
    assert set(initialize["result"]["serverInfo"]) == {"name", "version"}
    assert "completions" not in initialize["result"]["capabilities"]
    assert sorted(t["name"] for t in seen["tools"]) == sorted(tools)
    for tool in seen["tools"]:
        assert not NEWER_TOOL_FIELDS & set(tool), tool
    assert not seen["called"].get("isError") and "hello 2024" in seen["called"]["content"][0]["text"]
    assert "structuredContent" not in seen["called"]
    assert seen["prompt"]["messages"][0]["content"]["text"].startswith("Read this message from the customer")
    for message in seen["received"]:
        assert message.get("jsonrpc") == "2.0"


def _many_tools(count: int) -> None:
    Tool.objects.bulk_create([
        Tool(name=f"extra_{i:03d}", description=f"Extra tool {i}", kind="echo", config={},
             input_schema={"type": "object", "properties": {}}) for i in range(count)])
    from mcp_tools.services.lookup_cache import lookup_cache_bump

    lookup_cache_bump()  # bulk_create sends no signal


async def _names(client) -> list[str]:
    await client.initialize()
    try:
        return [tool.function.name for tool in await client.get_tools()]
    finally:
        await client.aclose()


def test_mistral_get_tools_sees_every_tool_over_http_sse(server_a, tools, all_tools_token):
    _many_tools(60)
    client = MCPClientSSE(sse_params=SSEServerParams(url=f"{server_a.url}/mcp/sse", timeout=10,
                                                     headers={"Authorization": f"Bearer {all_tools_token}"}))
    names = asyncio.run(_names(client))
    assert len(names) == Tool.objects.filter(enabled=True).count() > 50
    assert sorted(names) == sorted(Tool.objects.filter(enabled=True).values_list("name", flat=True))


@pytest.mark.parametrize("page_size", [None, 0])
def test_mistral_get_tools_over_streamable_http_follows_the_endpoints_page_size(
        server_a, tools, all_tools_token, page_size):
    _many_tools(60)
    McpEndpoint.objects.create(slug="mistral", name="Mistral", all_tools=True, page_size=page_size)
    client = MCPClientStreamableHTTP(StreamableHTTPServerParams(
        url=f"{server_a.url}/mcp/mistral", timeout=10, headers={"Authorization": f"Bearer {all_tools_token}"}))
    names = asyncio.run(_names(client))
    total = Tool.objects.filter(enabled=True).count()
    # The server default (50 per page) is what mistralai silently stops at; 0 serves everything at once.
    assert len(names) == (total if page_size == 0 else 50)
