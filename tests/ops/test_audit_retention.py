"""Audit retention (prune_audit) and CSV export of the filtered audit list."""
import csv
from datetime import timedelta
import io
import json

from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.utils import timezone
import pytest

from mcp_tools.audit_retention import audit_prune, prune_audit_events
from mcp_tools.models import AuditEvent


def event(tool="echo", outcome="ok", age=timedelta(0), **fields):
    fields.setdefault("request_id", "r")
    return AuditEvent.objects.create(tool_name=tool, outcome=outcome, transport="rest",
                                     created_at=timezone.now() - age, **fields)


@pytest.fixture
def history(db):
    old = [event(age=timedelta(days=100 + i), arguments={"n": i}) for i in range(5)]
    recent = [event(age=timedelta(days=10)), event(age=timedelta(hours=1))]
    return old, recent


class TestPrune:
    def test_it_deletes_only_events_older_than_the_retention_in_batches(self, history, tmp_path):
        old, recent = history
        archive = tmp_path / "audit.jsonl"
        out = io.StringIO()
        call_command("prune_audit", "--days", "90", "--batch-size", "2", "--archive", str(archive), stdout=out)
        assert "Deleted 5 audit event(s)" in out.getvalue() and "in 3 batch(es)" in out.getvalue()
        assert set(AuditEvent.objects.values_list("pk", flat=True)) == {e.pk for e in recent}
        lines = [json.loads(line) for line in archive.read_text().splitlines()]
        assert sorted(line["id"] for line in lines) == sorted(e.pk for e in old)
        assert {line["arguments"]["n"] for line in lines} == {0, 1, 2, 3, 4}

    def test_dry_run_counts_and_keeps_everything(self, history):
        out = io.StringIO()
        call_command("prune_audit", "--days", "90", "--dry-run", stdout=out)
        assert "Would delete 5" in out.getvalue()
        assert AuditEvent.objects.count() == 7

    def test_it_uses_the_retention_setting_by_default(self, history, settings):
        settings.MCP_AUDIT_RETENTION_DAYS = 5
        call_command("prune_audit", stdout=io.StringIO())
        assert AuditEvent.objects.count() == 1

    def test_bad_values_are_refused_with_a_clear_error(self, history, settings):
        settings.MCP_AUDIT_RETENTION_DAYS = 0
        with pytest.raises(CommandError, match="keep forever"):
            call_command("prune_audit")
        with pytest.raises(CommandError, match="batch-size"):
            call_command("prune_audit", "--days", "3", "--batch-size", "0")
        assert AuditEvent.objects.count() == 7

    def test_max_batches_bounds_one_run(self, history):
        assert audit_prune(older_than_days=90, batch_size=2, max_batches=1).deleted == 2

    def test_the_beat_task_applies_the_setting_and_archives(self, history, settings, tmp_path):
        settings.MCP_AUDIT_RETENTION_DAYS = 90
        settings.MCP_AUDIT_ARCHIVE_DIR = str(tmp_path / "archive")
        assert prune_audit_events.apply().get() == 5
        [archive] = (tmp_path / "archive").glob("audit-*.jsonl")
        assert len(archive.read_text().splitlines()) == 5
        settings.MCP_AUDIT_RETENTION_DAYS = 0
        assert prune_audit_events.apply().get() == 0


@pytest.fixture
def support(db):
    user = User.objects.create_user("support", password="x" * 12, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return user


class TestCsvExport:
    def test_it_exports_the_filtered_list(self, client, support, db):
        event(tool="echo", outcome="ok", token_prefix="abcd1234")
        event(tool="echo", outcome="denied", error_message="=HYPERLINK(\"http://evil\")")
        event(tool="create_ticket", outcome="denied")
        client.force_login(support)
        response = client.get("/admin/mcp_tools/auditevent/export.csv?outcome__exact=denied")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert sorted(row["tool_name"] for row in rows) == ["create_ticket", "echo"]
        assert {row["outcome"] for row in rows} == {"denied"}
        # Cells a spreadsheet would run as a formula are neutralised.
        assert "'=HYPERLINK(\"http://evil\")" in [row["error_message"] for row in rows]

    def test_search_applies_too(self, client, support, db):
        event(tool="echo", request_id="find-me")
        event(tool="echo", request_id="other")
        client.force_login(support)
        response = client.get("/admin/mcp_tools/auditevent/export.csv?q=find-me")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert [row["request_id"] for row in rows] == ["find-me"]

    def test_the_changelist_links_to_the_export_with_its_filters(self, client, support, db):
        client.force_login(support)
        html = client.get("/admin/mcp_tools/auditevent/?outcome__exact=ok").content.decode()
        assert "/admin/mcp_tools/auditevent/export.csv?outcome__exact=ok" in html
        assert "/admin/dashboard/" in html

    def test_staff_without_audit_access_and_non_staff_are_refused(self, client, db):
        event()
        clerk = User.objects.create_user("clerk", password="x" * 12, is_staff=True)
        client.force_login(clerk)
        assert client.get("/admin/mcp_tools/auditevent/export.csv").status_code == 403
        outsider = User.objects.create_user("outsider", password="x" * 12)
        client.force_login(outsider)
        response = client.get("/admin/mcp_tools/auditevent/export.csv")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
