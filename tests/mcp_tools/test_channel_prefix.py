"""Pub/sub channels ignore the Redis database number: each deployment's channels carry its own prefix."""
from urllib.parse import urlsplit

from django.conf import settings
from django.test import override_settings

from mcp_tools.services.live_events import change_publish, changes_listen


def _first_event(listener, within_s=3.0):
    return listener.next(timeout=within_s)


def test_a_deployment_hears_its_own_change_feed():
    with changes_listen() as listener:
        change_publish(method="notifications/tools/list_changed")
        event = _first_event(listener)
    assert event == {"method": "notifications/tools/list_changed", "params": {}}


def test_a_deployment_on_another_database_of_the_same_server_is_not_heard():
    with override_settings(MCP_REDIS_CHANNEL_PREFIX="db-elsewhere:"):
        with changes_listen() as listener:
            with override_settings(MCP_REDIS_CHANNEL_PREFIX="db-neighbour:"):
                change_publish(method="notifications/tools/list_changed", params={"from": "neighbour"})
            change_publish(method="notifications/prompts/list_changed", params={"from": "us"})
            event = _first_event(listener)
    # The neighbour's event was published first; only ours may arrive.
    assert event == {"method": "notifications/prompts/list_changed", "params": {"from": "us"}}


def test_the_default_prefix_names_the_database_of_redis_url():
    db = urlsplit(settings.REDIS_URL).path.strip("/") or "0"
    assert settings.MCP_REDIS_CHANNEL_PREFIX == f"db{db}:"
