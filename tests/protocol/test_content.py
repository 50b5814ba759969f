import json

import pytest

from mcp_tools.protocol import content as c
from mcp_tools.protocol.jsonrpc import INVALID_PARAMS, ProtocolError

from .helpers import STATE_KEY, assert_valid


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", "2026-07-28"])
def test_content_blocks_match_the_schema(version):
    assert_valid(version, "TextContent", c.text("hi", annotations={"priority": 0.5}))
    assert_valid(version, "ImageContent", c.image("AAAA", "image/png"))
    assert_valid(version, "AudioContent", c.audio("AAAA", "audio/wav"))
    assert_valid(version, "EmbeddedResource",
                 c.embedded_resource(c.text_resource_contents("test://x", "body", "text/plain")))
    assert_valid(version, "EmbeddedResource", c.embedded_resource(c.blob_resource_contents("test://b", "AAAA")))
    assert_valid(version, "ResourceLink", c.resource_link("test://r", "r", mime_type="text/plain", size=3))


def test_text_block_shape():
    assert c.text("hi") == {"type": "text", "text": "hi"}
    assert c.resource_link("u://x", "x", title="X") == {"type": "resource_link", "uri": "u://x", "name": "x",
                                                         "title": "X"}


def test_tool_result_mirrors_structured_content_as_text():
    result = c.tool_result([c.text("summary")], structured={"count": 2, "name": "é"})
    assert result["structuredContent"] == {"count": 2, "name": "é"}
    assert result["content"][0] == c.text("summary")
    assert json.loads(result["content"][1]["text"]) == {"count": 2, "name": "é"}
    assert "isError" not in result
    assert_valid("2025-11-25", "CallToolResult", result)


def test_tool_result_does_not_duplicate_an_existing_json_block():
    once = c.tool_result([c.text('{"a":1}')], structured={"a": 1})
    assert len(once["content"]) == 1


def test_tool_error_is_an_in_band_error_result():
    result = c.tool_error("boom")
    assert result == {"content": [{"type": "text", "text": "boom"}], "isError": True}
    assert_valid("2025-06-18", "CallToolResult", result)


def test_cursor_round_trips_and_is_scoped():
    cursor = c.encode_cursor({"offset": 10}, key=STATE_KEY, scope="tools/list")
    assert c.decode_cursor(cursor, key=STATE_KEY, scope="tools/list") == {"offset": 10}
    with pytest.raises(ProtocolError) as exc:
        c.decode_cursor(cursor, key=STATE_KEY, scope="prompts/list")
    assert exc.value.code == INVALID_PARAMS


@pytest.mark.parametrize("bad", ["", "abc", "v1.x.y", 42, None])
def test_invalid_cursors_are_invalid_params(bad):
    with pytest.raises(ProtocolError) as exc:
        c.decode_cursor(bad, key=STATE_KEY)
    assert exc.value.code == INVALID_PARAMS


def test_a_tampered_cursor_is_rejected():
    cursor = c.encode_cursor({"offset": 10}, key=STATE_KEY)
    prefix, payload, sig = cursor.split(".")
    forged = c.encode_cursor({"offset": 99999}, key=b"other-key")
    with pytest.raises(ProtocolError):
        c.decode_cursor(f"{prefix}.{forged.split('.')[1]}.{sig}", key=STATE_KEY)
    with pytest.raises(ProtocolError):
        c.decode_cursor(forged, key=STATE_KEY)


def test_paginate_walks_every_item_once():
    items = list(range(7))
    seen, cursor = [], None
    pages = 0
    while True:
        page, cursor = c.paginate(items, cursor, key=STATE_KEY, scope="s", page_size=3)
        seen.extend(page)
        pages += 1
        if cursor is None:
            break
    assert seen == items
    assert pages == 3


def test_paginate_single_page_has_no_next_cursor():
    assert c.paginate([1, 2], None, key=STATE_KEY, scope="s", page_size=5) == ([1, 2], None)
