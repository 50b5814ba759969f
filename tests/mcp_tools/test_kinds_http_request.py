"""The http_request kind: SSRF refusals, IP pinning, redirects, caps, timeouts and upstream secrets.

Every test runs under ``no_external_network``: a connection attempt to any non-loopback
address is refused before a packet leaves and fails the test. Servers are on 127.0.0.1.
"""
import ipaddress
import json
import logging
import time

import pytest

from mcp_tools.exceptions import ToolError, ToolTimeout
from mcp_tools.forms import ToolAdminForm
from mcp_tools.kinds.base import InvocationContext, get_kind
from mcp_tools.kinds.http_request import address_problem, target_resolve
from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.invocation import Caller, tool_invoke
from mcp_tools.services.secret_config import MASK

from ..helpers import LocalHttpServer, json_reply
from ..network_guard import no_external_network  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_external_network")

SECRET = "Bearer upstream-secret-4f9a1c"


def call(config, arguments=None, timeout_s=5.0):
    context = InvocationContext(tool_name="api", request_id="test", timeout_s=timeout_s)
    return get_kind("http_request").run(arguments or {}, config, context)


@pytest.fixture
def echo_server():
    def handler(method, path, headers, body):
        return json_reply(200, {"method": method, "path": path, "headers": headers, "body": body.decode()})
    with LocalHttpServer(handler) as server:
        yield server


REFUSED_HOSTS = [
    "127.0.0.1", "127.1.2.3", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0", "[::]",
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254", "169.254.170.2",
    "[fd00:ec2::254]", "100.100.100.200", "192.0.0.192", "[fe80::1]", "[fc00::1]", "224.0.0.1", "240.0.0.1",
    "255.255.255.255", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::]", "[64:ff9b::a00:1]",
    "2130706433", "0177.0.0.1", "0x7f.0.0.1", "017700000001", "127.1", "0",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_non_public_targets_are_refused_before_connecting(host, no_external_network):
    with pytest.raises(ToolError) as caught:
        call({"base_url": f"http://{host}:9/", "method": "GET"})
    assert "resolves to" in caught.value.message
    assert no_external_network.attempts == []


@pytest.mark.parametrize("address, problem", [
    ("8.8.8.8", None), ("2606:4700::1111", None),
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"),
    ("10.1.2.3", "a private address"), ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"), ("100.100.100.200", "a cloud metadata address"),
    ("::ffff:10.0.0.1", "a private address (embedded in ::ffff:a00:1)"),
    ("64:ff9b::7f00:1", "a loopback address (embedded in 64:ff9b::7f00:1)"),
    ("233.252.0.1", "a multicast address"),
])
def test_address_problem(address, problem):
    assert address_problem(ipaddress.ip_address(address)) == problem


def test_an_allow_listed_local_host_is_called_with_the_admins_headers_only(echo_server):
    result = call({"base_url": f"http://localhost:{echo_server.port}/api", "method": "POST",
                   "path": "/customers/{customer_id}", "allowed_hosts": ["localhost"],
                   "headers": {"X-Team": "support"}, "secret_headers": {"Authorization": SECRET}},
                  {"customer_id": "42", "note": "hi"})
    seen = echo_server.requests[0]
    assert result["status"] == 200
    assert (seen["method"], seen["path"], json.loads(seen["body"])) == ("POST", "/api/customers/42", {"note": "hi"})
    assert seen["headers"]["Host"] == f"localhost:{echo_server.port}"
    assert seen["headers"]["X-Team"] == "support"
    assert seen["headers"]["Authorization"] == SECRET
    # ...and the echo of the secret never comes back to the caller.
    assert SECRET not in json.dumps(result) and "[REDACTED]" in json.dumps(result)


def test_a_path_argument_cannot_change_the_host(echo_server, no_external_network):
    call({"base_url": f"http://127.0.0.1:{echo_server.port}", "path": "/c/{id}", "allowed_hosts": ["127.0.0.1"]},
         {"id": "@169.254.169.254/latest/meta-data?x=../../"})
    assert echo_server.requests[0]["path"] == "/c/%40169.254.169.254%2Flatest%2Fmeta-data%3Fx%3D..%2F..%2F"


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(echo_server, no_external_network):
    # DNS rebinding: the first answer is checked; a second lookup would answer an off-machine address.
    no_external_network.map_name("rebind.test", ["127.0.0.1"], ["198.51.100.7"])
    result = call({"base_url": f"http://rebind.test:{echo_server.port}", "allowed_hosts": ["rebind.test"]})
    assert result["status"] == 200
    assert no_external_network.lookups == ["rebind.test"]  # resolved once
    assert echo_server.requests[0]["headers"]["Host"] == f"rebind.test:{echo_server.port}"


def test_a_public_first_answer_is_pinned_even_if_dns_then_points_home(echo_server, no_external_network):
    # The attacker's name answers a public address for the check, then 127.0.0.1 for the connect.
    no_external_network.map_name("evil.test", ["93.184.216.34"], ["127.0.0.1"])
    with pytest.raises(ToolError, match="Could not reach"):
        call({"base_url": f"http://evil.test:{echo_server.port}"})
    # The one attempt went to the checked public address (the guard stopped it); the local server saw nothing.
    assert no_external_network.take_attempts() == [("93.184.216.34", echo_server.port)]
    assert echo_server.requests == [] and no_external_network.lookups == ["evil.test"]


def test_a_name_resolving_to_a_private_address_is_refused(no_external_network):
    no_external_network.map_name("intranet.test", ["10.20.30.40"])
    with pytest.raises(ToolError, match=r"'intranet.test' resolves to a private address \(10.20.30.40\)"):
        call({"base_url": "http://intranet.test/"})


def test_a_name_with_any_private_answer_is_refused(no_external_network):
    no_external_network.map_name("mixed.test", ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(ToolError, match="loopback"):
        call({"base_url": "http://mixed.test/"})


def test_metadata_addresses_are_refused_even_when_allow_listed(no_external_network):
    no_external_network.map_name("metadata.test", ["169.254.169.254"])
    for host in ("169.254.169.254", "metadata.test"):
        with pytest.raises(ToolError, match="may never call"):
            call({"base_url": f"http://{host}/", "allowed_hosts": [host]})


@pytest.mark.parametrize("location", ["http://127.0.0.1:1/", "http://169.254.169.254/latest/meta-data/",
                                      "http://[::1]/", "/elsewhere"])
def test_redirects_are_refused_not_followed(location):
    with LocalHttpServer(lambda *a: (302, {"Location": location}, b"")) as server:
        with pytest.raises(ToolError, match="redirects are not followed"):
            call({"base_url": server.url, "allowed_hosts": ["127.0.0.1"]})
    assert len(server.requests) == 1


def test_the_response_size_is_capped():
    with LocalHttpServer(lambda *a: (200, {"Content-Type": "text/plain"}, b"x" * 50_000)) as server:
        with pytest.raises(ToolError, match="larger than 1000 bytes"):
            call({"base_url": server.url, "allowed_hosts": ["127.0.0.1"], "max_response_bytes": 1000})


def test_a_slow_upstream_times_out():
    def slow(*args):
        time.sleep(1.5)
        return json_reply(200, {})
    with LocalHttpServer(slow) as server:
        started = time.monotonic()
        with pytest.raises(ToolTimeout, match="did not answer within 0.5s"):
            call({"base_url": server.url, "allowed_hosts": ["127.0.0.1"]}, timeout_s=0.5)
        assert time.monotonic() - started < 1.4


def test_an_upstream_error_does_not_echo_the_secret():
    with LocalHttpServer(lambda m, p, headers, b: json_reply(401, {"got": headers.get("Authorization")})) as server:
        with pytest.raises(ToolError) as caught:
            call({"base_url": server.url, "allowed_hosts": ["127.0.0.1"],
                  "secret_headers": {"Authorization": SECRET}})
    assert "401" in caught.value.message and SECRET not in caught.value.message


def test_the_guard_itself_refuses_off_machine_connections(no_external_network):
    import socket

    with socket.socket() as sock, pytest.raises(OSError, match="test guard"):
        sock.connect(("192.0.2.1", 80))
    assert no_external_network.take_attempts() == [("192.0.2.1", 80)]
    with pytest.raises(socket.gaierror, match="no external DNS"):
        socket.getaddrinfo("example.com", 80)


class TestCheckConfig:
    def check(self, config):
        return get_kind("http_request").check_config(config)

    def test_credentials_in_the_url_are_refused(self):
        assert self.check({"base_url": "http://user:pw@api.internal/"}) == [
            "Put upstream credentials in secret_headers, not in base_url."]

    def test_the_host_header_cannot_be_configured(self):
        assert self.check({"base_url": "http://api.internal/", "headers": {"Host": "evil"}}) == [
            "Header 'Host' is set by the server and may not be configured."]


@pytest.mark.django_db(transaction=True)
class TestUpstreamSecretsStayHidden:
    def make_tool(self, url):
        return Tool.objects.create(
            name="crm", description="crm", kind="http_request", input_schema={"type": "object"},
            config={"base_url": url, "method": "POST", "allowed_hosts": ["127.0.0.1"],
                    "secret_headers": {"Authorization": SECRET}})

    def test_the_admin_form_masks_and_keeps_the_secret(self, echo_server):
        tool = self.make_tool(echo_server.url)
        form = ToolAdminForm(instance=tool)
        assert SECRET not in str(form) and MASK in str(form)
        data = {name: form.initial.get(name) for name in form.fields}
        data.update({"input_schema": json.dumps(tool.input_schema), "annotations": "{}", "output_schema": "",
                     "sensitive_fields": "[]", "config": json.dumps(form.initial["config"]), "rate_limit": "",
                     "timeout_s": 30, "execution": "sync", "kind": "http_request", "enabled": True})
        bound = ToolAdminForm(data=data, instance=tool)
        assert bound.is_valid(), bound.errors
        assert bound.cleaned_data["config"]["secret_headers"] == {"Authorization": SECRET}

    def test_the_admin_change_page_never_shows_the_secret(self, echo_server, admin_client):
        tool = self.make_tool(echo_server.url)
        response = admin_client.get(f"/admin/mcp_tools/tool/{tool.pk}/change/")
        assert response.status_code == 200
        assert SECRET not in response.content.decode() and MASK in response.content.decode()

    def test_view_only_staff_never_see_the_secret(self, echo_server, client, django_user_model):
        from django.contrib.auth.models import Permission

        tool = self.make_tool(echo_server.url)
        viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_tool"))
        client.force_login(viewer)
        page = client.get(f"/admin/mcp_tools/tool/{tool.pk}/change/").content.decode()
        assert "upstream-secret" not in page and MASK in page and "base_url" in page
        tool.refresh_from_db()
        assert tool.config["secret_headers"] == {"Authorization": SECRET}

    def test_a_new_secret_replaces_the_old_one(self, echo_server):
        from mcp_tools.services.secret_config import config_unmasked

        kind = get_kind("http_request")
        stored = {"secret_headers": {"Authorization": SECRET, "X-Key": "k1"}}
        assert config_unmasked(kind, {"secret_headers": {"Authorization": MASK, "X-Key": "k2"}}, stored) == {
            "secret_headers": {"Authorization": SECRET, "X-Key": "k2"}}

    def test_the_secret_is_never_audited_or_logged_and_the_callers_token_never_forwarded(
            self, echo_server, issue_token, caplog):
        self.make_tool(echo_server.url)
        issued = issue_token(all_tools=True)
        caplog.set_level(logging.DEBUG)
        invocation = tool_invoke(name="crm", arguments={"q": "x", "api_token": issued.secret},
                                 caller=Caller(token=issued.token))
        assert invocation.ok, invocation.message
        forwarded = echo_server.requests[0]
        assert forwarded["headers"]["Authorization"] == SECRET  # the admin's credential, not the caller's
        # The caller's token reaches the upstream only where the caller put it: in the arguments it chose to send.
        assert issued.secret not in json.dumps(forwarded["headers"])
        event = AuditEvent.objects.get()
        stored = json.dumps({f.name: str(getattr(event, f.name)) for f in AuditEvent._meta.fields})
        assert SECRET not in stored and issued.secret not in stored
        assert SECRET not in caplog.text and issued.secret not in caplog.text
