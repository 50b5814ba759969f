"""The admin activity dashboard: numbers from real audit rows, staff only, no inline script."""
from datetime import timedelta
import re

from django.contrib.auth.models import Permission, User
from django.utils import timezone
import pytest

from mcp_tools.models import AuditEvent


def event(tool, outcome, duration_ms, age):
    return AuditEvent.objects.create(tool_name=tool, outcome=outcome, duration_ms=duration_ms, transport="rest",
                                     request_id="r", created_at=timezone.now() - age)


@pytest.fixture
def activity(db):
    for _ in range(3):
        event("echo", "ok", 2.0, timedelta(hours=1))
    event("echo", "invalid", 1.0, timedelta(hours=2))
    event("get_customer_by_email", "ok", 40.0, timedelta(hours=3))
    event("get_customer_by_email", "timeout", 900.0, timedelta(days=3))  # only in the week
    event("create_ticket", "ok", 15.0, timedelta(days=30))  # in neither


def section(html, key):
    return html.split(f'id="period-{key}"')[1].split("</section>")[0]


def test_it_shows_calls_per_tool_and_outcome_and_the_slowest_tools(client, activity, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    day, week = section(html, "day"), section(html, "week")
    assert "Last 24 hours: 5 calls" in day
    assert "Last 7 days: 6 calls" in week
    assert 'data-outcome="ok">ok: <strong>4</strong>' in day
    assert 'data-outcome="timeout">timeout: <strong>1</strong>' in week and "timeout" not in day
    assert "create_ticket" not in html
    # The bar chart: one titled segment per tool and outcome, with the counts.
    assert "<title>echo: 3 ok</title>" in day and "<title>echo: 1 invalid</title>" in day
    assert "<title>get_customer_by_email: 1 timeout</title>" in week
    # Slowest first: get_customer_by_email's mean over the week is (40 + 900) / 2 = 470 ms.
    assert day.index("get_customer_by_email") < day.index("<td>echo</td>")
    assert "470.0 ms mean" in week
    assert "<td>get_customer_by_email</td><td>2</td><td>470.0</td>" in re.sub(r"\s+", "", week)


def test_it_has_no_inline_script_and_escapes_tool_names(client, db, admin_user):
    event("<script>alert(1)</script>", "ok", 1.0, timedelta(minutes=5))
    client.force_login(admin_user)
    html = client.get("/admin/dashboard/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    content = html.split('id="content-main"')[1]
    assert "<script" not in content and "style=" not in content.split("</svg>")[0]


def test_non_staff_are_sent_to_the_login_page(client, activity):
    user = User.objects.create_user("agent-owner", password="x" * 12)
    client.force_login(user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.logout()
    assert client.get("/admin/dashboard/").status_code == 302


def test_staff_without_audit_access_are_refused(client, activity):
    user = User.objects.create_user("clerk", password="x" * 12, is_staff=True)
    client.force_login(user)
    assert client.get("/admin/dashboard/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    user = User.objects.get(pk=user.pk)
    client.force_login(user)
    assert client.get("/admin/dashboard/").status_code == 200


def test_dashboard_queries_are_bounded(client, activity, admin_user, django_assert_max_num_queries):
    client.force_login(admin_user)
    with django_assert_max_num_queries(10):
        client.get("/admin/dashboard/")
