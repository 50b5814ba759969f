"""http_request: arguments never change the path's structure, secrets are scrubbed in echoed forms,
and a private target without an allow-list entry is refused when the tool is saved."""
import base64
import json
from urllib.parse import quote

import pytest

from mcp_tools.exceptions import ToolError
from mcp_tools.kinds.base import InvocationContext, get_kind

from ..helpers import LocalHttpServer, json_reply
from ..network_guard import no_external_network  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_external_network")

SECRET = "Bearer upstream-secret-4f9a1c"
TEMPLATE = "/api/customers/{customer_ref}/orders"


def call(config, arguments=None):
    context = InvocationContext(tool_name="api", request_id="test", timeout_s=5.0)
    return get_kind("http_request").run(arguments or {}, config, context)


def check(config, **kwargs):
    return get_kind("http_request").check_config(config, **kwargs)


@pytest.fixture
def echo_server():
    def handler(method, path, headers, body):
        return json_reply(200, {"path": path, "headers": headers})
    with LocalHttpServer(handler) as server:
        yield server


def config_for(server, **extra):
    return {"base_url": f"http://127.0.0.1:{server.port}", "path": TEMPLATE, "allowed_hosts": ["127.0.0.1"],
            "secret_headers": {"Authorization": SECRET}, **extra}


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_a_dot_or_empty_segment_is_refused_and_nothing_is_sent(echo_server, value):
    with pytest.raises(ToolError, match="would change the request path"):
        call(config_for(echo_server), {"customer_ref": value})
    assert echo_server.requests == []


@pytest.mark.parametrize("value", ["../..", "a/../../admin", "%2e%2e", "x?y#z", "..;", "a b"])
def test_any_other_value_is_one_encoded_segment_inside_the_template(echo_server, value):
    call(config_for(echo_server), {"customer_ref": value})
    path = echo_server.requests[-1]["path"]
    assert path == f"/api/customers/{quote(value, safe='')}/orders"
    assert path.startswith("/api/customers/") and path.endswith("/orders") and path.count("/") == 4


def test_an_ordinary_reference_still_reaches_its_orders(echo_server):
    assert call(config_for(echo_server), {"customer_ref": "C-42"})["status"] == 200
    assert echo_server.requests[-1]["path"] == "/api/customers/C-42/orders"


@pytest.mark.parametrize("template, expected", [
    ("api/{x}", "must start with '/'"),
    ("{x}/orders", "must start with '/'"),
    ("/a/{x!r}", "plain name"),
    ("/a/{x.y}", "plain name"),
    ("/a?b={x}", "may not hold '?'"),
])
def test_a_bad_template_cannot_be_saved(template, expected):
    problems = check({"base_url": "http://api.internal", "path": template})
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("encode", [
    lambda s: s.lower(), lambda s: s.upper(), lambda s: quote(s, safe=""), lambda s: quote(s, safe="").lower(),
    lambda s: base64.b64encode(s.encode()).decode(), lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    lambda s: base64.b64encode(s.split()[1].encode()).decode().rstrip("="), lambda s: s.split()[1].upper(),
], ids=["lower", "upper", "urlencoded", "urlencoded-lower", "base64", "base64url", "token-base64", "token-upper"])
def test_an_echoed_secret_is_scrubbed_in_its_other_forms(encode):
    echoed = encode(SECRET)
    with LocalHttpServer(lambda m, p, h, b: json_reply(200, {"seen": f"auth={echoed};", "other": "fine"})) as server:
        result = call({"base_url": server.url, "allowed_hosts": ["127.0.0.1"],
                       "secret_headers": {"Authorization": SECRET}})
    text = json.dumps(result)
    assert echoed not in text and "[REDACTED]" in text and result["data"]["other"] == "fine"


class TestPrivateTargetsAtSave:
    @pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost/", "http://10.1.2.3/api",
                                     "http://[::1]:9000", "http://192.168.0.10"])
    def test_a_private_target_without_an_allow_list_entry_is_refused(self, url, no_external_network):
        problems = check({"base_url": url})
        assert any("allowed_hosts" in p and "resolves to" in p for p in problems), problems
        assert no_external_network.attempts == []

    def test_an_allow_listed_private_target_saves(self):
        assert check({"base_url": "http://127.0.0.1:8000", "allowed_hosts": ["127.0.0.1"]}) == []

    def test_a_metadata_address_is_refused_even_when_allow_listed(self):
        problems = check({"base_url": "http://169.254.169.254", "allowed_hosts": ["169.254.169.254"]})
        assert any("may never call" in p for p in problems), problems

    def test_a_name_that_does_not_resolve_here_is_left_for_call_time(self):
        assert check({"base_url": "http://api.internal/"}) == []
