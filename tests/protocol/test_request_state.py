import pytest

from mcp_tools.protocol.jsonrpc import INVALID_PARAMS, ProtocolError
from mcp_tools.protocol.request_state import sign_request_state, verify_request_state
from mcp_tools.protocol.signing import InvalidToken, seal, unseal

from .helpers import STATE_KEY


def test_state_round_trips_with_its_binding():
    token = sign_request_state({"step": 2}, key=STATE_KEY, method="tools/call", target="t", round=2,
                               pending=("a", "b"))
    state = verify_request_state(token, key=STATE_KEY, method="tools/call", target="t")
    assert state.data == {"step": 2}
    assert state.round == 2
    assert state.pending == ("a", "b")


@pytest.mark.parametrize("mutate", [
    lambda t: t + "-TAMPERED",
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "v1." + t.split(".")[1][::-1] + "." + t.split(".")[2],
    lambda t: "",
])
def test_tampered_state_is_invalid_params(mutate):
    token = sign_request_state({"ok": True}, key=STATE_KEY, method="tools/call", target="t")
    with pytest.raises(ProtocolError) as exc:
        verify_request_state(mutate(token), key=STATE_KEY, method="tools/call", target="t")
    assert exc.value.code == INVALID_PARAMS


def test_state_for_another_tool_or_method_is_rejected():
    token = sign_request_state({}, key=STATE_KEY, method="tools/call", target="a")
    with pytest.raises(ProtocolError, match="another request"):
        verify_request_state(token, key=STATE_KEY, method="tools/call", target="b")
    with pytest.raises(ProtocolError):
        verify_request_state(token, key=STATE_KEY, method="prompts/get", target="a")


def test_expired_state_is_rejected():
    token = sign_request_state({}, key=STATE_KEY, method="tools/call", target="a", ttl_s=60, now=1000.0)
    assert verify_request_state(token, key=STATE_KEY, method="tools/call", target="a", now=1059.0).data == {}
    with pytest.raises(ProtocolError, match="expired"):
        verify_request_state(token, key=STATE_KEY, method="tools/call", target="a", now=1061.0)


def test_a_cursor_can_not_be_replayed_as_request_state():
    cursor_like = seal({"m": "tools/call", "t": "a", "r": 1, "k": [], "d": {}}, key=STATE_KEY, purpose="cursor")
    with pytest.raises(ProtocolError):
        verify_request_state(cursor_like, key=STATE_KEY, method="tools/call", target="a")


def test_seal_requires_a_key_and_detects_wrong_keys():
    with pytest.raises(ValueError):
        seal({}, key=b"", purpose="x")
    token = seal({"a": 1}, key=b"k1", purpose="x")
    assert unseal(token, key=b"k1", purpose="x") == {"a": 1}
    with pytest.raises(InvalidToken):
        unseal(token, key=b"k2", purpose="x")
