"""Client replies travel through Redis, and a wait longer than redis-py's socket timeout still works."""
import threading
import time

from mcp_tools.services.mcp_sessions import client_response_publish, client_response_wait


def test_a_reply_arriving_after_six_seconds_is_received():
    session_id, request_id = f"s-{time.time_ns()}", "srv-1"
    timer = threading.Timer(6.0, client_response_publish, kwargs={
        "session_id": session_id, "message": {"jsonrpc": "2.0", "id": request_id, "result": {"action": "accept"}}})
    timer.start()
    try:
        started = time.monotonic()
        reply = client_response_wait(session_id=session_id, request_id=request_id, timeout=10)
        assert reply is not None and reply["result"] == {"action": "accept"}
        assert 5.5 < time.monotonic() - started < 9
    finally:
        timer.cancel()


def test_no_reply_means_none_after_the_timeout():
    started = time.monotonic()
    assert client_response_wait(session_id=f"s-{time.time_ns()}", request_id="x", timeout=0.5) is None
    assert time.monotonic() - started < 3
