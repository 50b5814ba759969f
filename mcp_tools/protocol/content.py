"""Builders for content blocks, tool results and pagination cursors."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .jsonrpc import INVALID_PARAMS, ProtocolError
from .signing import InvalidToken, seal, unseal


def _with_optional(block: dict[str, Any], annotations: dict[str, Any] | None,
                   meta: dict[str, Any] | None) -> dict[str, Any]:
    if annotations:
        block["annotations"] = annotations
    if meta:
        block["_meta"] = meta
    return block


def text(value: str, *, annotations: dict[str, Any] | None = None,
         meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return _with_optional({"type": "text", "text": value}, annotations, meta)


def image(data_b64: str, mime_type: str, *, annotations: dict[str, Any] | None = None,
          meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return _with_optional({"type": "image", "data": data_b64, "mimeType": mime_type}, annotations, meta)


def audio(data_b64: str, mime_type: str, *, annotations: dict[str, Any] | None = None,
          meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return _with_optional({"type": "audio", "data": data_b64, "mimeType": mime_type}, annotations, meta)


def text_resource_contents(uri: str, value: str, mime_type: str | None = None) -> dict[str, Any]:
    contents: dict[str, Any] = {"uri": uri, "text": value}
    if mime_type:
        contents["mimeType"] = mime_type
    return contents


def blob_resource_contents(uri: str, blob_b64: str, mime_type: str | None = None) -> dict[str, Any]:
    contents: dict[str, Any] = {"uri": uri, "blob": blob_b64}
    if mime_type:
        contents["mimeType"] = mime_type
    return contents


def embedded_resource(contents: dict[str, Any], *, annotations: dict[str, Any] | None = None,
                      meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """``contents`` comes from :func:`text_resource_contents` or :func:`blob_resource_contents`."""
    return _with_optional({"type": "resource", "resource": contents}, annotations, meta)


def resource_link(uri: str, name: str, *, title: str | None = None, description: str | None = None,
                  mime_type: str | None = None, size: int | None = None,
                  annotations: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "resource_link", "uri": uri, "name": name}
    for key, value in (("title", title), ("description", description), ("mimeType", mime_type), ("size", size)):
        if value is not None:
            block[key] = value
    return _with_optional(block, annotations, None)


def tool_result(content: Sequence[dict[str, Any]] = (), *, structured: Any = None,
                is_error: bool = False, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CallToolResult.

    When ``structured`` is given it is sent as ``structuredContent`` and, for
    clients that ignore that field, also serialised as a trailing text block
    (the spec's backwards-compatibility advice), unless that exact text is
    already present.
    """
    blocks = list(content)
    result: dict[str, Any] = {"content": blocks}
    if structured is not None:
        result["structuredContent"] = structured
        serialised = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        if not any(b.get("type") == "text" and b.get("text") == serialised for b in blocks):
            blocks.append(text(serialised))
    if is_error:
        result["isError"] = True
    if meta:
        result["_meta"] = meta
    return result


def tool_error(message: str) -> dict[str, Any]:
    """A tool *execution* failure: reported in-band so the model can see it."""
    return tool_result([text(message)], is_error=True)


# --- pagination -----------------------------------------------------------

_CURSOR_PURPOSE = "cursor"


def encode_cursor(position: dict[str, Any], *, key: bytes, scope: str = "") -> str:
    """Opaque, tamper-evident cursor. ``scope`` (e.g. the list method) binds it
    so a tools/list cursor is rejected by prompts/list."""
    return seal({"s": scope, "pos": position}, key=key, purpose=_CURSOR_PURPOSE)


def decode_cursor(cursor: Any, *, key: bytes, scope: str = "") -> dict[str, Any]:
    try:
        data = unseal(cursor, key=key, purpose=_CURSOR_PURPOSE)
    except InvalidToken:
        raise ProtocolError(INVALID_PARAMS, "Invalid params: invalid cursor") from None
    if data.get("s") != scope or not isinstance(data.get("pos"), dict):
        raise ProtocolError(INVALID_PARAMS, "Invalid params: invalid cursor")
    return data["pos"]


def paginate(items: Sequence[Any], cursor: Any, *, key: bytes, scope: str,
             page_size: int) -> tuple[list[Any], str | None]:
    """Offset pagination over an already-ordered list. Returns (page, nextCursor)."""
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    start = 0
    if cursor is not None:
        offset = decode_cursor(cursor, key=key, scope=scope).get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ProtocolError(INVALID_PARAMS, "Invalid params: invalid cursor")
        start = offset
    end = start + page_size
    page = list(items[start:end])
    next_cursor = encode_cursor({"offset": end}, key=key, scope=scope) if end < len(items) else None
    return page, next_cursor
