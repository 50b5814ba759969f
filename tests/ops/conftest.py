import uuid

import pytest

from mcp_tools import worker_heartbeat


@pytest.fixture
def heartbeat_key(monkeypatch):
    """A heartbeat key no running worker writes to: the fleet is dead until the test says otherwise."""
    key = f"mcp:test:workers:{uuid.uuid4().hex}"
    monkeypatch.setattr(worker_heartbeat, "KEY", key)
    yield key
    worker_heartbeat._client().delete(key)
