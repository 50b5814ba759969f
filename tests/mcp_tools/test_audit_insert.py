"""The audit INSERT writes exactly the row the ORM would, and steps aside for model signals."""
from django.db.models.signals import post_save
from django.forms.models import model_to_dict
import pytest

from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.audit import audit_record
from mcp_tools.services.invocation import Caller
from mcp_tools.services.tokens import token_issue

pytestmark = pytest.mark.django_db


def record(**overrides):
    tool = Tool.objects.create(name="audited", description="d", kind="echo", config={})
    token = token_issue(name="agent", all_tools=True).token
    caller = Caller(token=token, client_ip="192.0.2.7", transport="mcp", protocol_version="2025-11-25",
                    confirmation="accept")
    kwargs = dict(tool=tool, tool_name=tool.name, caller=caller, outcome="tool_error",
                  arguments={"q": "x", "password": "hunter2", "nested": [1, {"a": None}]},
                  error_code="tool_error", error_message="bad hunter2", duration_ms=1.23456,
                  request_id="req-1", task_id="t-1")
    kwargs.update(overrides)
    return audit_record(**kwargs), tool, token


def test_the_stored_row_has_every_field_as_given(django_assert_num_queries):
    event, tool, token = record()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert model_to_dict(stored) == model_to_dict(event)
    assert (stored.tool_id, stored.token_id, stored.token_prefix) == (tool.pk, token.pk, token.prefix)
    assert stored.arguments == {"q": "x", "password": "[REDACTED]", "nested": [1, {"a": None}]}
    assert stored.error_message == "bad [REDACTED]"
    assert (stored.client_ip, stored.protocol_version, stored.confirmation) == ("192.0.2.7", "2025-11-25",
                                                                                "accept")
    assert stored.created_at == event.created_at and stored.duration_ms == 1.235
    assert not event._state.adding


def test_one_event_costs_one_query(django_assert_num_queries):
    tool = Tool.objects.create(name="audited", description="d", kind="echo", config={})
    with django_assert_num_queries(1):
        audit_record(tool=tool, tool_name=tool.name, caller=Caller(), outcome="ok", arguments={},
                     duration_ms=0, request_id="r")


def test_a_post_save_listener_still_hears_every_event():
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=AuditEvent)
    try:
        event, _, _ = record()
    finally:
        post_save.disconnect(listener, sender=AuditEvent)
    assert heard == [(event.pk, True)]


def test_without_listeners_the_prepared_statement_is_used(monkeypatch):
    monkeypatch.setattr(AuditEvent, "save", lambda *a, **k: pytest.fail("save() was used"))
    event, _, _ = record()
    assert AuditEvent.objects.filter(pk=event.pk).exists()
