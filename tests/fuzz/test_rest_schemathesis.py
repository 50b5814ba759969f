"""Schemathesis against the REST pair's OpenAPI schema (drf-spectacular, /mcp/v1/openapi.json).

In-process: the schema is loaded from, and every generated case is sent to, the project's WSGI application
(no server, no network). Each case must get no 5xx and a response that conforms to the schema.
"""
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import given, settings
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from demo_company.seed import seed_company, seed_tools
from mcp_tools.models import ApiToken, Tool
from mcp_tools.services.tokens import token_issue
from tickets.models import Ticket

from ..network_guard import no_external_network  # noqa: F401
from .profile import fuzz

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_external_network")]


@pytest.fixture
def auth(db):
    seed_company()
    seed_tools("http://127.0.0.1:9")
    return {"Authorization": f"Bearer {token_issue(name='schemathesis', all_tools=True).secret}"}


def test_schema_is_served_to_authenticated_callers_only(client, auth):
    assert client.get("/mcp/v1/openapi.json").status_code == 401
    schema = client.get("/mcp/v1/openapi.json", headers=auth).json()
    assert set(schema["paths"]) == {"/mcp/v1/tools", "/mcp/v1/tools/invoke"}


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, keeping the test's database connection (and transaction) open.

    Django's own test client does the same: its request signals would otherwise close the connection.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _unacceptable_json(value) -> bool:
    """Does ``value`` hold what every door refuses (mcp_tools/protocol/json_text.py)?"""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or any("\ud800" <= char <= "\udfff" for char in item):
                return True
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -(2**63) <= item < 2**63:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def test_rest_pair_conforms_to_its_schema(auth, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/mcp/v1/openapi.json", wsgi_app, headers=auth)
    counts = (Ticket.objects.count(), Tool.objects.count(), ApiToken.objects.count())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 2
    for operation in operations:
        @settings(fuzz, max_examples=min(fuzz.max_examples, 30))
        @given(case=operation.as_strategy())
        def check(case):
            # A cursor is signed (HMAC): no generated string is a valid one, and the 400 that answers a forged
            # cursor is documented. Every other check still runs on those cases.
            forged_cursor = (case.query or {}).get("cursor") is not None
            # Text Postgres cannot store (NUL, unpaired surrogates) and integers beyond 64 bits are refused
            # at parse time at every door (400, documented); OpenAPI cannot say so about free-form arguments.
            refused_json = _unacceptable_json(case.body)
            response = case.call_and_validate(
                headers=auth,
                excluded_checks=[positive_data_acceptance] if forged_cursor or refused_json else None)
            assert response.status_code < 500

        check()
    assert (Ticket.objects.count(), Tool.objects.count(), ApiToken.objects.count()) == counts
