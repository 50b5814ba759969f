"""The schemas the protocol tests judge messages by must be able to say no (whichever judge is in use)."""
import jsonschema
import pytest

from tests.protocol.helpers import _validator, assert_valid, schema_judge

REVISIONS = ("2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28")


def test_the_judge_is_named():
    assert "MCP_SCHEMA_DIR" in schema_judge()


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_well_formed_tool_result_passes(revision):
    result = {"content": [{"type": "text", "text": "hi"}], "isError": False}
    if revision >= "2026-07-28":
        result["resultType"] = "complete"
    assert_valid(revision, "CallToolResult", result)


@pytest.mark.parametrize("revision", REVISIONS)
@pytest.mark.parametrize("bad", [
    {"content": "not a list"},
    {"content": [{"type": "text"}]},  # text content without its text
    {"content": [{"type": "text", "text": 3}]},
])
def test_a_malformed_tool_result_is_refused(revision, bad):
    with pytest.raises(jsonschema.ValidationError):
        _validator(revision, "CallToolResult").validate(bad)
