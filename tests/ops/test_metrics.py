"""Prometheus metrics: the seed's names, auth/rate-limit/task counters, access control, multiprocess mode."""
from concurrent.futures import ThreadPoolExecutor
import json
import re

from celery import shared_task
import httpx
from prometheus_client import REGISTRY
from mcp_tools.metrics import metrics_record_invocation
from mcp_tools.models import AuditEvent

from .helpers import gunicorn_server


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def invoke(api, token, name, arguments):
    return api.post("/mcp/v1/tools/invoke", json={"name": name, "arguments": arguments},
                    headers={"Authorization": f"Bearer {token}"})


def test_invocations_and_durations_are_counted_per_tool_and_status(api, demo_token):
    ok_before = sample("mcp_tool_invocations_total", tool_name="echo", status="ok")
    bad_before = sample("mcp_tool_invocations_total", tool_name="echo", status="invalid")
    hist_before = sample("mcp_tool_duration_seconds_count", tool_name="echo")

    assert invoke(api, demo_token, "echo", {"message": "hi"}).status_code == 200
    assert invoke(api, demo_token, "echo", {"message": "hi"}).status_code == 200
    assert invoke(api, demo_token, "echo", {"text": 7}).status_code == 400  # breaks the schema: audited invalid

    assert sample("mcp_tool_invocations_total", tool_name="echo", status="ok") == ok_before + 2
    assert sample("mcp_tool_invocations_total", tool_name="echo", status="invalid") == bad_before + 1
    assert sample("mcp_tool_duration_seconds_count", tool_name="echo") == hist_before + 3


def test_unknown_tool_names_share_one_label(api, demo_token):
    before = sample("mcp_tool_invocations_total", tool_name="(unknown)", status="invalid")
    invoke(api, demo_token, "made_up_tool_1", {})
    invoke(api, demo_token, "made_up_tool_2", {})
    after = {s.labels["tool_name"] for m in REGISTRY.collect() if m.name == "mcp_tool_invocations"
             for s in m.samples}
    assert "made_up_tool_1" not in after
    assert sum(sample("mcp_tool_invocations_total", tool_name="(unknown)", status=status)
               for status in ("invalid", "denied", "tool_error")) >= before + 2


def test_auth_failures_are_counted(api, demo):
    before = sample("mcp_auth_failures_total", endpoint="rest-tools")
    assert api.get("/mcp/v1/tools").status_code == 401
    assert api.get("/mcp/v1/tools", headers={"Authorization": "Bearer mcp_abcdefgh_" + "x" * 43}).status_code == 401
    assert sample("mcp_auth_failures_total", endpoint="rest-tools") == before + 2


def test_rate_limited_outcomes_feed_their_own_counter():
    before = sample("mcp_rate_limited_calls_total", tool_name="echo")
    metrics_record_invocation(tool_name="echo", outcome="rate_limited", duration_ms=1.5)
    assert sample("mcp_rate_limited_calls_total", tool_name="echo") == before + 1


@shared_task(name="tests.ops.flaky")
def flaky(fail):
    if fail:
        raise ValueError("boom")
    return "ok"


def test_task_outcomes_are_counted():
    ok_before = sample("mcp_task_outcomes_total", task_name="tests.ops.flaky", outcome="success")
    failed_before = sample("mcp_task_outcomes_total", task_name="tests.ops.flaky", outcome="failure")
    flaky.apply(args=(False,))
    flaky.apply(args=(True,))
    assert sample("mcp_task_outcomes_total", task_name="tests.ops.flaky", outcome="success") == ok_before + 1
    assert sample("mcp_task_outcomes_total", task_name="tests.ops.flaky", outcome="failure") == failed_before + 1


class TestAccess:
    def test_loopback_is_allowed_by_default_and_sees_the_seed_names(self, api, demo_token):
        invoke(api, demo_token, "echo", {"message": "hi"})
        response = api.get("/metrics")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert re.search(r'^mcp_tool_invocations_total\{status="ok",tool_name="echo"\} \d', response.text, re.M)
        assert 'mcp_tool_duration_seconds_bucket{le="0.005",tool_name="echo"}' in response.text
        assert "django_http_requests_total_by_method_total" in response.text

    def test_an_address_outside_the_allow_list_is_refused(self, api, transactional_db, settings):
        settings.METRICS_ALLOWED_NETWORKS = [__import__("ipaddress").ip_network("10.0.0.0/8")]
        response = api.get("/metrics")
        assert response.status_code == 403
        assert "mcp_tool_invocations" not in response.text

    def test_the_token_opens_it_from_anywhere_and_a_wrong_one_does_not(self, api, transactional_db, settings):
        settings.METRICS_ALLOWED_NETWORKS = []
        settings.METRICS_TOKEN = "m" * 32
        assert api.get("/metrics").status_code == 403
        assert api.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32}).status_code == 403
        assert api.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32}).status_code == 200

    def test_no_token_configured_means_no_bearer_access(self, api, transactional_db, settings):
        settings.METRICS_ALLOWED_NETWORKS = []
        settings.METRICS_TOKEN = ""
        assert api.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 403


def _metric_value(text, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_gunicorn_workers_are_added_up(demo, demo_token, tmp_path):
    multiproc = tmp_path / "prom"
    with gunicorn_server(workers=2, multiproc_dir=multiproc, log_path=tmp_path / "gunicorn.log") as server:
        def call(_):
            # A new connection per call lets both workers' accept loops take some.
            with httpx.Client(base_url=server.url, timeout=30) as client:
                return invoke(client, demo_token, "echo", {"message": "x"}).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(60)))
        assert statuses == [200] * 60, server.log.read_text()[-4000:]
        writers = {path.name.rsplit("_", 1)[-1] for path in multiproc.glob("counter_*.db")}
        assert len(writers) >= 2, f"only {writers} wrote counters"
        text = httpx.get(server.url + "/metrics", timeout=10).text
        assert _metric_value(text, "mcp_tool_invocations_total", tool_name="echo", status="ok") == 60
        assert _metric_value(text, "mcp_tool_duration_seconds_count", tool_name="echo") == 60
        assert AuditEvent.objects.filter(tool_name="echo").count() == 60
    # The access log is JSON, one line per request, with the tool and token prefix.
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "mcp_tools.access" and line["tool"] == "echo"]
    assert len(access) == 60
    assert access[0]["key_prefix"] == demo_token.split("_")[1]
    assert demo_token.split("_", 2)[2] not in server.log.read_text()
