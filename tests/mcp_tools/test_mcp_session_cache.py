"""Handshake-era sessions are read through a Redis copy: a hit costs no query, every change is seen at once."""
from django.test import override_settings
import pytest

from mcp_tools.models import McpSession
from mcp_tools.protocol.context import SessionState
from mcp_tools.services import lookup_cache, mcp_sessions
from mcp_tools.services.mcp_sessions import session_create, session_end, session_load, session_save

pytestmark = pytest.mark.django_db

ENDPOINT, PRINCIPAL = "", "api-token:1"


@pytest.fixture
def session_id():
    state = SessionState(protocol_version="2025-11-25", client_info={"name": "test"}, initialized=True)
    return session_create(state=state, endpoint=ENDPOINT, principal=PRINCIPAL)


def load(session_id, endpoint=ENDPOINT, principal=PRINCIPAL):
    return session_load(session_id=session_id, endpoint=endpoint, principal=principal)


def test_a_warm_load_costs_no_query(django_assert_num_queries, session_id):
    assert load(session_id) is not None  # reads the row, stores the copy
    with django_assert_num_queries(0):
        loaded = load(session_id)
    assert loaded.state.client_info == {"name": "test"}


def test_a_saved_change_is_seen_by_the_next_load(session_id):
    loaded = load(session_id)
    loaded.state.log_level = "error"
    session_save(session_id=session_id, state=loaded.state)
    assert load(session_id).state.log_level == "error"


def test_an_ended_session_is_gone_at_once(session_id):
    load(session_id)
    assert session_end(session_id=session_id, endpoint=ENDPOINT, principal=PRINCIPAL)
    assert load(session_id) is None


def test_a_session_deleted_in_the_admin_is_gone_at_once(session_id):
    load(session_id)
    McpSession.objects.get(pk=session_id).delete()  # what the admin's delete does
    assert load(session_id) is None


def test_the_copy_keeps_the_endpoint_and_principal_checks(session_id):
    load(session_id)
    assert load(session_id, principal="api-token:2") is None
    assert load(session_id, endpoint="other") is None
    assert load(session_id) is not None


def test_a_reader_that_loaded_the_row_before_a_change_cannot_store_it(session_id):
    # Reader A reads (no copy yet) and then the row; writer B changes the session in between.
    _, epoch_seen_by_a = mcp_sessions._cache_read(session_id)
    stale_row = McpSession.objects.get(pk=session_id)
    state = SessionState.from_dict(stale_row.state)
    state.log_level = "critical"
    session_save(session_id=session_id, state=state)  # B
    mcp_sessions._cache_fill(session_id, {"endpoint": ENDPOINT, "principal": PRINCIPAL, "state": stale_row.state,
                                          "last_seen": stale_row.last_seen_at.timestamp()}, epoch=epoch_seen_by_a)
    assert mcp_sessions._cache_read(session_id)[0] is None  # A's stale copy was refused
    assert load(session_id).state.log_level == "critical"


def test_a_change_made_elsewhere_without_this_code_is_seen_after_an_invalidation(session_id):
    load(session_id)
    McpSession.objects.filter(pk=session_id).update(state={**McpSession.objects.get(pk=session_id).state,
                                                           "log_level": "warning"})
    assert load(session_id).state.log_level is None  # the copy is in use
    mcp_sessions.session_cache_invalidate(session_id=session_id)
    assert load(session_id).state.log_level == "warning"


def test_without_redis_every_load_reads_the_database(django_assert_num_queries, session_id):
    load(session_id)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        lookup_cache._down_until = 0.0
        McpSession.objects.filter(pk=session_id).update(principal="someone-else")
        with django_assert_num_queries(1):
            assert load(session_id) is None
    lookup_cache._down_until = 0.0
    lookup_cache._client = None


def test_with_the_lookup_cache_off_every_load_reads_the_database(django_assert_num_queries, session_id):
    with override_settings(MCP_LOOKUP_CACHE=False):
        load(session_id)
        with django_assert_num_queries(1):
            assert load(session_id) is not None
