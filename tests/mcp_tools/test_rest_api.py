"""The seed's REST pair over real HTTP: auth, listing, invocation and every error path."""
from datetime import timedelta

from django.utils import timezone
import pytest

from mcp_tools.models import AuditEvent, Tool
from mcp_tools.services.tokens import token_revoke
from tickets.models import Ticket
from mcp_tools.services.lookup_cache import lookup_cache_bump


def invoke(api, token, name, arguments=None, **kwargs):
    body = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
    return api.post("/mcp/v1/tools/invoke", json=body, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_health_reports_status_and_version(api, transactional_db):
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "version": "0.1.0"}


class TestAuthentication:
    def test_it_rejects_a_missing_token_with_401_and_www_authenticate(self, api, demo):
        response = api.get("/mcp/v1/tools")
        assert response.status_code == 401
        assert "detail" in response.json()
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_it_rejects_an_unknown_token(self, api, demo):
        response = api.get("/mcp/v1/tools", headers={"Authorization": "Bearer mcp_abcdefgh_" + "x" * 43})
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid API token."}

    def test_it_rejects_a_malformed_api_key(self, api, demo):
        response = api.get("/mcp/v1/tools", headers={"X-API-Key": "nonsense"})
        assert response.status_code == 401
        assert "Malformed" in response.json()["detail"]

    def test_a_bearer_value_that_is_no_api_token_is_checked_as_an_oauth_token(self, api, demo):
        response = api.get("/mcp/v1/tools", headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    def test_it_rejects_a_non_bearer_scheme(self, api, demo_token):
        response = api.get("/mcp/v1/tools", headers={"Authorization": f"Basic {demo_token}"})
        assert response.status_code == 401

    def test_it_accepts_the_x_api_key_header(self, api, demo_token):
        response = api.get("/mcp/v1/tools", headers={"X-API-Key": demo_token})
        assert response.status_code == 200
        assert response.json()["tools"]

    def test_it_rejects_an_expired_token(self, api, demo, issue_token):
        secret = issue_token(all_tools=True, expires_at=timezone.now() - timedelta(minutes=1)).secret
        response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    def test_it_rejects_a_revoked_token_at_once(self, api, demo, issue_token):
        issued = issue_token(all_tools=True)
        headers = {"Authorization": f"Bearer {issued.secret}"}
        assert api.get("/mcp/v1/tools", headers=headers).status_code == 200
        token_revoke(token=issued.token)
        response = api.get("/mcp/v1/tools", headers=headers)
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]

    def test_it_refuses_a_token_used_outside_its_ip_ranges(self, api, demo, issue_token):
        secret = issue_token(all_tools=True, allowed_ips=["10.0.0.0/8"]).secret
        response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 403
        assert "127.0.0.1" in response.json()["detail"]

    def test_it_accepts_a_token_inside_its_ip_ranges(self, api, demo, issue_token):
        secret = issue_token(all_tools=True, allowed_ips=["127.0.0.0/8"]).secret
        assert api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    def test_invoke_without_token_is_refused_and_runs_nothing(self, api, demo):
        response = api.post("/mcp/v1/tools/invoke", json={"name": "create_ticket",
                                                          "arguments": {"title": "t", "description": "d"}})
        assert response.status_code == 401
        assert Ticket.objects.count() == 0


class TestToolList:
    def test_it_lists_enabled_tools_in_the_seed_shape(self, api, demo_token):
        response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {demo_token}"})
        tools = response.json()["tools"]
        names = [t["name"] for t in tools]
        assert names == sorted(names)
        assert {"database_query", "send_notification", "create_ticket", "get_customer_by_email"} <= set(names)
        assert all(set(t) == {"name", "description", "input_schema"} for t in tools)
        ticket = next(t for t in tools if t["name"] == "create_ticket")
        assert ticket["input_schema"]["properties"]["priority"]["enum"] == ["low", "medium", "high", "urgent"]

    def test_it_hides_disabled_tools(self, api, demo, demo_token):
        Tool.objects.filter(name="echo").update(enabled=False)
        lookup_cache_bump()  # QuerySet.update() sends no signal
        names = [t["name"] for t in api.get("/mcp/v1/tools", headers={"X-API-Key": demo_token}).json()["tools"]]
        assert "echo" not in names and "create_ticket" in names

    def test_a_scoped_token_sees_only_its_tools(self, api, demo, issue_token):
        secret = issue_token(tools=[demo["echo"], demo["create_ticket"]]).secret
        tools = api.get("/mcp/v1/tools", headers={"X-API-Key": secret}).json()["tools"]
        assert [t["name"] for t in tools] == ["create_ticket", "echo"]


class TestListCache:
    """The listing is built once per tools generation and token scope; every change shows at once."""

    def test_a_tool_disabled_after_a_listing_disappears_from_the_next(self, api, demo, demo_token):
        headers = {"X-API-Key": demo_token}
        assert "echo" in [t["name"] for t in api.get("/mcp/v1/tools", headers=headers).json()["tools"]]
        Tool.objects.filter(name="echo").update(enabled=False)
        lookup_cache_bump()  # what tools_set_enabled does
        assert "echo" not in [t["name"] for t in api.get("/mcp/v1/tools", headers=headers).json()["tools"]]

    def test_a_description_saved_in_the_admin_shows_at_once(self, api, demo, demo_token):
        headers = {"X-API-Key": demo_token}
        api.get("/mcp/v1/tools", headers=headers)
        echo = Tool.objects.get(name="echo")
        echo.description = "Echo, now described differently"
        echo.save()  # post_save bumps the generation
        tools = api.get("/mcp/v1/tools", headers=headers).json()["tools"]
        assert next(t for t in tools if t["name"] == "echo")["description"] == "Echo, now described differently"

    def test_a_grant_change_shows_at_once_and_scopes_never_share_a_listing(self, api, demo, issue_token):
        narrow = issue_token(tools=[demo["echo"]])
        wide = issue_token(all_tools=True)
        assert [t["name"] for t in api.get("/mcp/v1/tools", headers={"X-API-Key": narrow.secret}).json()[
            "tools"]] == ["echo"]
        assert len(api.get("/mcp/v1/tools", headers={"X-API-Key": wide.secret}).json()["tools"]) > 1
        narrow.token.allowed_tools.add(demo["create_ticket"])  # m2m_changed bumps the token generation
        assert [t["name"] for t in api.get("/mcp/v1/tools", headers={"X-API-Key": narrow.secret}).json()[
            "tools"]] == ["create_ticket", "echo"]

    def test_a_revoked_token_gets_no_cached_listing(self, api, demo, issue_token):
        issued = issue_token(all_tools=True)
        assert api.get("/mcp/v1/tools", headers={"X-API-Key": issued.secret}).status_code == 200
        token_revoke(token=issued.token)
        assert api.get("/mcp/v1/tools", headers={"X-API-Key": issued.secret}).status_code == 401


class TestListPaging:
    def names(self, body):
        return [t["name"] for t in body["tools"]]

    def test_without_paging_parameters_the_whole_list_comes_back_without_a_cursor(self, api, demo_token):
        body = api.get("/mcp/v1/tools", headers={"X-API-Key": demo_token}).json()
        assert set(body) == {"tools"}
        assert len(body["tools"]) == Tool.objects.filter(enabled=True).count()

    def test_pages_walk_the_same_list_in_the_same_order(self, api, demo_token):
        headers = {"X-API-Key": demo_token}
        everything = self.names(api.get("/mcp/v1/tools", headers=headers).json())
        assert len(everything) > 3
        body = api.get("/mcp/v1/tools?limit=2", headers=headers).json()
        walked, pages = self.names(body), 1
        assert len(walked) == 2
        while "next_cursor" in body:
            body = api.get("/mcp/v1/tools", params={"cursor": body["next_cursor"]}, headers=headers).json()
            assert len(body["tools"]) <= 2  # the cursor keeps the page size
            walked += self.names(body)
            pages += 1
        assert walked == everything
        assert pages == -(-len(everything) // 2)

    def test_a_cursor_alone_uses_the_default_page_size_from_the_cursor(self, api, demo_token, settings):
        headers = {"X-API-Key": demo_token}
        first = api.get("/mcp/v1/tools?limit=1", headers=headers).json()
        second = api.get("/mcp/v1/tools", params={"cursor": first["next_cursor"], "limit": 3}, headers=headers)
        everything = self.names(api.get("/mcp/v1/tools", headers=headers).json())
        assert self.names(second.json()) == everything[1:4]

    @pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=1001", "limit=abc", "limit=%C2%B2",
                                       "cursor=nonsense", "cursor=v1.e30.%C3%A9", "cursor="])
    def test_bad_paging_parameters_are_a_400_with_a_detail(self, api, demo_token, query):
        response = api.get(f"/mcp/v1/tools?{query}", headers={"X-API-Key": demo_token})
        assert response.status_code == 400
        assert set(response.json()) == {"detail"}

    def test_a_cursor_of_mcp_tools_list_is_refused(self, api, demo_token):
        from mcp_tools.protocol.content import encode_cursor
        from mcp_tools.transports.mcp_backend import state_key

        cursor = encode_cursor({"offset": 1}, key=state_key(), scope="tools/list")
        response = api.get("/mcp/v1/tools", params={"cursor": cursor}, headers={"X-API-Key": demo_token})
        assert response.status_code == 400


class TestInvoke:
    def test_it_runs_a_tool_and_reports_success(self, api, demo_token):
        response = invoke(api, demo_token, "create_ticket",
                          {"title": "Printer on fire", "description": "Third floor", "priority": "urgent"})
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True
        ticket = Ticket.objects.get(pk=body["result"]["id"])
        assert (ticket.title, ticket.priority, ticket.created_by_tool) == ("Printer on fire", "urgent",
                                                                            "create_ticket")
        assert body["result"]["ticket_id"] == ticket.reference

    def test_unknown_tool(self, api, demo_token):
        response = invoke(api, demo_token, "launch_rockets", {})
        assert response.status_code == 404
        assert response.json() == {"success": False, "error": "Unknown tool 'launch_rockets'. List the available "
                                   "tools with tools/list or GET /mcp/v1/tools."}

    def test_disabled_tool(self, api, demo, demo_token):
        Tool.objects.filter(name="create_ticket").update(enabled=False)
        lookup_cache_bump()  # QuerySet.update() sends no signal
        response = invoke(api, demo_token, "create_ticket", {"title": "t", "description": "d"})
        assert response.status_code == 403
        assert response.json()["error"] == "Tool 'create_ticket' is disabled by an administrator."
        assert Ticket.objects.count() == 0

    @pytest.mark.parametrize("execution", ["sync", "async"])
    def test_a_tool_that_needs_confirmation_is_refused_because_rest_cannot_ask(self, api, demo, demo_token,
                                                                                execution):
        from mcp_tools.models import ToolTask

        Tool.objects.filter(name="create_ticket").update(requires_confirmation=True, execution=execution)
        lookup_cache_bump()  # QuerySet.update() sends no signal
        response = invoke(api, demo_token, "create_ticket", {"title": "t", "description": "d"})
        assert response.status_code == 403
        assert "needs a person to confirm every call" in response.json()["error"]
        assert Ticket.objects.count() == 0 and ToolTask.objects.count() == 0
        event = AuditEvent.objects.get(tool_name="create_ticket")
        assert (event.outcome, event.error_code, event.confirmation) == ("denied", "not_confirmed", "")

    def test_tool_outside_the_tokens_scope(self, api, demo, issue_token):
        secret = issue_token(tools=[demo["echo"]]).secret
        response = invoke(api, secret, "create_ticket", {"title": "t", "description": "d"})
        assert response.status_code == 403
        assert "may not call tool 'create_ticket'" in response.json()["error"]
        assert Ticket.objects.count() == 0

    def test_invalid_arguments_name_each_problem(self, api, demo_token):
        response = invoke(api, demo_token, "create_ticket", {"title": 5, "priority": "whenever"})
        assert response.status_code == 400
        error = response.json()["error"]
        assert "'description' is a required property" in error
        assert "$.title: 5 is not of type 'string'" in error
        assert "$.priority: 'whenever' is not one of" in error
        assert Ticket.objects.count() == 0

    def test_arguments_must_be_an_object(self, api, demo_token):
        response = invoke(api, demo_token, "echo", ["not", "an", "object"])
        assert response.status_code == 400
        assert response.json()["error"] == "Tool arguments must be a JSON object."

    def test_missing_arguments_mean_an_empty_object(self, api, demo_token):
        response = invoke(api, demo_token, "echo")
        assert response.json() == {"success": True, "result": {"echo": {}}}

    def test_malformed_json(self, api, demo_token):
        response = api.post("/mcp/v1/tools/invoke", content=b'{"name": "echo",',
                            headers={"Authorization": f"Bearer {demo_token}", "Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["success"] is False
        assert response.json()["error"].startswith("Malformed JSON body")

    def test_body_must_be_an_object_with_a_name(self, api, demo_token):
        headers = {"Authorization": f"Bearer {demo_token}"}
        assert api.post("/mcp/v1/tools/invoke", json=[1, 2], headers=headers).status_code == 400
        response = api.post("/mcp/v1/tools/invoke", json={"arguments": {}}, headers=headers)
        assert response.status_code == 400
        assert "Missing 'name'" in response.json()["error"]

    def test_wrong_content_type(self, api, demo_token):
        response = api.post("/mcp/v1/tools/invoke", content=b"name=echo",
                            headers={"Authorization": f"Bearer {demo_token}",
                                     "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 415
        assert "application/json" in response.json()["error"]

    def test_oversized_body(self, api, demo_token, settings):
        body = b'{"name": "echo", "arguments": {"text": "' + b"x" * (settings.MCP_MAX_BODY_BYTES + 10) + b'"}}'
        response = api.post("/mcp/v1/tools/invoke", content=body,
                            headers={"Authorization": f"Bearer {demo_token}", "Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json()["success"] is False
        assert AuditEvent.objects.count() == 0

    def test_unexpected_exception_gives_a_generic_message_with_request_id(self, api, demo, demo_token, caplog):
        Tool.objects.create(name="buggy", description="raises", kind="test_explode",
                            input_schema={"type": "object"})
        response = api.post("/mcp/v1/tools/invoke", json={"name": "buggy", "arguments": {}},
                            headers={"Authorization": f"Bearer {demo_token}", "X-Request-ID": "req-abc-123"})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error == "Internal error while running the tool. Quote request id req-abc-123 to support."
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert response.headers["X-Request-ID"] == "req-abc-123"
        assert any("req-abc-123" in r.getMessage() and r.exc_info for r in caplog.records)
        event = AuditEvent.objects.get()
        assert (event.outcome, event.request_id) == ("internal_error", "req-abc-123")

    def test_timeout(self, api, demo, demo_token):
        Tool.objects.create(name="slowpoke", description="times out", kind="test_timeout", timeout_s=2,
                            input_schema={"type": "object"})
        response = invoke(api, demo_token, "slowpoke", {})
        assert response.status_code == 504
        assert response.json() == {"success": False, "error": "The tool did not finish within 2s."}
        assert AuditEvent.objects.get().outcome == "timeout"


class TestSeedCurlExamples:
    """The two curl commands of the seed's 'Deploying MCP Server' section, byte for byte."""

    def test_tool_discovery(self, api, demo_token):
        response = api.get("/mcp/v1/tools", headers={"Authorization": f"Bearer {demo_token}"})
        assert response.status_code == 200
        assert "database_query" in {t["name"] for t in response.json()["tools"]}

    def test_tool_invocation(self, api, demo_token):
        response = api.post(
            "/mcp/v1/tools/invoke",
            headers={"Authorization": f"Bearer {demo_token}", "Content-Type": "application/json"},
            content=b'{"name":"database_query","arguments":{"query":"SELECT * FROM users LIMIT 5"}}',
        )
        assert response.status_code == 200
        result = response.json()["result"]
        assert response.json()["success"] is True
        # The seed's REST shape: the list of row objects itself (MCP keeps the object, see test_seeded_tools).
        assert isinstance(result, list) and len(result) == 5
        assert {"id", "name", "email"} <= set(result[0])


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_every_call_through_either_header_is_audited_once(api, demo_token, header):
    value = f"Bearer {demo_token}" if header == "Authorization" else demo_token
    api.post("/mcp/v1/tools/invoke", json={"name": "echo", "arguments": {"text": "hi"}}, headers={header: value})
    api.post("/mcp/v1/tools/invoke", json={"name": "nope"}, headers={header: value})
    assert list(AuditEvent.objects.order_by("created_at").values_list("tool_name", "outcome")) == [
        ("echo", "ok"), ("nope", "invalid")]
