"""Structured logs: one JSON line per request; the request id reaches the audit trail and Celery tasks."""
import io
import json
import logging

from celery import shared_task

from mcp_tools.celery_signals import HEADER, _stamp_request_id
from mcp_tools.log_format import JsonFormatter
from mcp_tools.middleware import RequestIdLogFilter
from mcp_tools.models import AuditEvent
from mcp_tools.request_context import get_request_id, reset_request_id, set_request_id


class Capture:
    def __init__(self, logger_name):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(RequestIdLogFilter())
        self.logger = logging.getLogger(logger_name)

    def __enter__(self):
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)

    def lines(self):
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


def test_one_json_line_per_request_with_the_call_details(api, demo_token):
    with Capture("mcp_tools.access") as capture:
        response = api.post("/mcp/v1/tools/invoke", json={"name": "echo", "arguments": {"message": "hi"}},
                            headers={"Authorization": f"Bearer {demo_token}", "X-Request-ID": "req-abc.123"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-abc.123"
    [line] = capture.lines()
    assert line["request_id"] == "req-abc.123"
    assert line["method"] == "POST"
    assert line["path"] == "/mcp/v1/tools/invoke"
    assert line["tool"] == "echo"
    assert line["outcome"] == "ok"
    assert line["key_prefix"] == demo_token.split("_")[1]
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "INFO" and line["logger"] == "mcp_tools.access"
    assert demo_token not in capture.stream.getvalue()
    assert AuditEvent.objects.get(request_id="req-abc.123").tool_name == "echo"


def test_a_request_without_a_tool_or_token_still_logs_one_line(api, transactional_db):
    with Capture("mcp_tools.access") as capture:
        response = api.get("/mcp/v1/tools", headers={"X-Request-ID": "bad id with spaces"})
    assert response.status_code == 401
    [line] = capture.lines()
    assert line["status"] == 401 and line["tool"] == "" and line["key_prefix"] == ""
    assert line["request_id"] == response.headers["X-Request-ID"] != "bad id with spaces"


def test_the_formatter_keeps_extra_fields_and_exceptions():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("once",), None)
    record.tool = "echo"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed once" and entry["tool"] == "echo"
    assert "ValueError: boom" in entry["exc_info"]


@shared_task(name="tests.ops.seen_request_id")
def seen_request_id():
    return get_request_id()


def test_the_request_id_is_stamped_on_published_tasks():
    token = set_request_id("req-to-task")
    try:
        headers = {}
        _stamp_request_id(headers=headers)
    finally:
        reset_request_id(token)
    assert headers == {HEADER: "req-to-task"}
    empty = {}
    _stamp_request_id(headers=empty)  # outside a request: nothing to carry
    assert empty == {}


def test_a_task_runs_under_the_request_id_it_was_sent_with():
    assert seen_request_id.apply(headers={HEADER: "req-from-web"}).get() == "req-from-web"
    assert get_request_id() == "-"  # restored after the task
    own = seen_request_id.apply().get()
    assert own != "-" and len(own) == 32  # a task sent outside a request gets an id of its own


def test_a_message_published_to_the_real_broker_carries_the_request_id(settings):
    import redis

    from mcp_project.celery import app

    queue = "ops-test-request-id"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue)
    token = set_request_id("req-on-the-wire")
    try:
        app.send_task("tests.ops.seen_request_id", queue=queue)
    finally:
        reset_request_id(token)
    try:
        [raw] = client.lrange(queue, 0, -1)
        assert json.loads(raw)["headers"][HEADER] == "req-on-the-wire"
    finally:
        client.delete(queue)
