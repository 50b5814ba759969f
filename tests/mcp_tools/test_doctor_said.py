"""The doctor quotes what a refusing server said, so the fix it names is the server's own reason."""
from mcp_tools.doctor import _said


def test_it_quotes_a_json_rpc_error_message():
    body = b'{"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": "The HTTP+SSE transport needs Redis"}}'
    assert _said(body) == "Server said: The HTTP+SSE transport needs Redis"


def test_it_quotes_a_rest_error_and_a_first_text_line_but_not_an_html_page():
    assert _said(b'{"success": false, "error": "Busy"}') == "Server said: Busy"
    assert _said(b"Service down\nsecond line") == "Server said: Service down"
    assert _said(b"<!DOCTYPE html><html>...</html>") == ""
