"""Hostile JSON at every door, against a real gunicorn process and a real ``manage.py mcp_stdio``.

Whatever a client sends (non-finite and huge numbers, lone surrogates, NUL in member names and
values, deep nesting, duplicate member names, wrong types at every level of a tools/call), every
door answers without a 5xx or a JSON-RPC internal error (-32603), and each tool call that reached
the invocation pipeline leaves exactly one audit row: audit rows == answered tool calls, checked
after every example. The example count per door is fixed and the run derandomized, so CI repeats
the same inputs (HYPOTHESIS_HOSTILE_EXAMPLES raises it for a longer local run).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
import pytest

from mcp_tools.models import AuditEvent

from ..network_guard import no_external_network  # noqa: F401
from ..protocol_http.conftest import database_url_of_tests, start_server
from . import hostile
from .hostile import calls

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_external_network")]

EXAMPLES = int(os.environ.get("HYPOTHESIS_HOSTILE_EXAMPLES", "100"))
per_door = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
TALLY: dict[str, dict] = {}


@pytest.fixture(scope="module")
def hostile_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_server(database_url_of_tests())
    yield server
    server.stop()


def _stdio_env():
    from django.conf import settings as django_settings

    return {**os.environ, "DATABASE_URL": database_url_of_tests(), "REDIS_URL": django_settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "mcp_project.settings", "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(hostile.REPO)}


def _open(door: str, server, token: str):
    if door == "rest":
        return hostile.RestDoor(server.url, token)
    if door == "mcp-2025-11-25":
        return hostile.HandshakeDoor(server.url, token)
    if door == "mcp-2026-07-28":
        return hostile.StatelessDoor(server.url, token)
    if door == "mcp-sse":
        return hostile.SseDoor(server.url, token)
    return hostile.StdioDoor(_stdio_env(), token)


def _assert_clean(answer: hostile.Answer):
    assert answer.status is None or answer.status < 500, (answer.status, answer.messages)
    for message in answer.messages:
        if "error" in message and isinstance(message["error"], dict):
            assert message["error"].get("code") != -32603, message


@pytest.mark.parametrize("door", ["rest", "mcp-2025-11-25", "mcp-2026-07-28", "mcp-sse", "stdio"])
def test_hostile_json_never_5xx_and_every_answered_call_is_audited(door, demo, demo_token, hostile_server):
    opened = _open(door, hostile_server, demo_token)
    tally = TALLY[door] = {"inputs": 0, "5xx": 0, "answered_calls": 0, "audit_rows": 0}
    try:
        @per_door
        @given(call=calls)
        def run(call):
            before = AuditEvent.objects.count()
            answer = opened.send(call)
            tally["inputs"] += 1
            tally["5xx"] += int(answer.status is not None and answer.status >= 500)
            _assert_clean(answer)
            tally["answered_calls"] += answer.answered_calls
            expected = before + answer.answered_calls
            # Every door answers after the call's audit row is committed: no waiting needed.
            assert AuditEvent.objects.count() == expected, (call, answer.messages)
            tally["audit_rows"] += AuditEvent.objects.count() - before

        run()
    finally:
        opened.close()
    print(f"\nhostile JSON at {door}: {tally}")
    assert tally["answered_calls"] > 0, "no example reached the pipeline: the generator is too hostile to test it"
    assert tally["audit_rows"] == tally["answered_calls"]
