"""Hypothesis strategies shared by the fuzz tests: JSON values, JSON-RPC-shaped objects, raw bodies."""
import json

from hypothesis import strategies as st

# JSON scalars, including the awkward ones: huge ints, bools where ints are expected, lone surrogates
# are not representable in UTF-8 JSON text so plain text is used.
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=12,
)

METHODS = ["initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
           "prompts/list", "prompts/get", "notifications/initialized", "notifications/cancelled",
           "completion/complete", "logging/setLevel", "tasks/get", "tasks/list", "server/discover"]
TOOL_NAMES = ["echo", "get_ticket", "list_tickets", "database_query", "get_customer_by_email",
              "get_notification_status", "no_such_tool"]

ids = st.one_of(st.integers(), st.text(max_size=10), st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                st.lists(st.integers(), max_size=2))
methods = st.one_of(st.sampled_from(METHODS), st.text(max_size=20), json_values)
params = st.one_of(
    json_values,
    st.fixed_dictionaries({"name": st.one_of(st.sampled_from(TOOL_NAMES), json_values)},
                          optional={"arguments": json_values, "_meta": json_values}),
    st.fixed_dictionaries({}, optional={"protocolVersion": st.sampled_from(["2024-11-05", "2025-06-18",
                                                                         "2025-11-25", "1999-01-01"]),
                                        "capabilities": json_values, "clientInfo": json_values,
                                        "uri": st.text(max_size=20), "cursor": json_values}),
)
# Objects that look like JSON-RPC: every key optional so all the missing/wrong-key shapes occur.
jsonrpc_like = st.fixed_dictionaries(
    {},
    optional={"jsonrpc": st.one_of(st.just("2.0"), json_values), "id": ids, "method": methods,
              "params": params, "result": json_values, "error": json_values},
)


def encode(value) -> bytes:
    return json.dumps(value).encode()


# A body: arbitrary bytes, arbitrary JSON, or a JSON-RPC-shaped object.
bodies = st.one_of(st.binary(max_size=64), json_values.map(encode), jsonrpc_like.map(encode))

STATELESS_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {},
                  "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"}}
# Well-formed stateless-era requests whose method, tool name and arguments are fuzzed: they get past the
# parser and the era checks, so the dispatcher and the invocation pipeline see the hostile parts.
stateless_requests = st.fixed_dictionaries({
    "jsonrpc": st.just("2.0"),
    "id": st.one_of(st.integers(min_value=0, max_value=2**31), st.text(min_size=1, max_size=8)),
    "method": st.one_of(st.sampled_from(["tools/call", "tools/list", "resources/read", "prompts/get"]),
                        st.sampled_from(METHODS), st.text(max_size=12)),
    "params": st.fixed_dictionaries(
        {"_meta": st.just(STATELESS_META)},
        optional={"name": st.one_of(st.sampled_from(TOOL_NAMES), json_values), "arguments": json_values,
                  "uri": st.one_of(st.text(max_size=20), json_values), "cursor": json_values,
                  "level": json_values, "taskId": json_values},
    ),
})
