"""TEST ONLY: the fixtures the official MCP conformance suite expects, on /mcp/conformance.

Served only when ``MCP_CONFORMANCE_FIXTURES`` is on (``make conformance`` and the
conformance test start a server with it; ``conformance_server`` adds the tasks fixtures).
Nothing here touches the product's tools, tokens or data; every fixture is a fixed answer
named by the suite's scenarios. Pure protocol layer, no Django: the protocol-layer tests
serve the same fixtures from a subclass.
"""
from __future__ import annotations

import json
import time
from typing import Any

from ..protocol import Backend, InputRequired, PromptNotFound, ResourceNotFound, ToolNotFound
from ..protocol import content as c
from ..protocol.context import elicitation_request, list_roots_request, sampling_request

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_TINY = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
EMPTY = {"type": "object", "properties": {}}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
STEP_PAUSE_S = 0.05

SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                          "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                   "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                   "phone": {"type": "string"}, "email": {"type": "string"}},
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}
SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}
SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {"type": "string", "oneOf": [
            {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"},
            {"const": "value3", "title": "Third Option"}]},
        "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                       "enumNames": ["Option One", "Option Two", "Option Three"]},
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {"type": "array", "items": {"anyOf": [
            {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"},
            {"const": "value3", "title": "Third Choice"}]}},
    },
}


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": schema or EMPTY}


def _string_arg(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string"}}, "required": [name]}


TOOLS = [
    _tool("test_simple_text", "Returns simple text"),
    _tool("test_image_content", "Returns an image"),
    _tool("test_audio_content", "Returns audio"),
    _tool("test_embedded_resource", "Returns an embedded resource"),
    _tool("test_multiple_content_types", "Returns mixed content"),
    _tool("test_tool_with_logging", "Logs while running"),
    _tool("test_tool_with_progress", "Reports progress"),
    _tool("test_error_handling", "Always fails"),
    _tool("test_sampling", "Asks the client's LLM", _string_arg("prompt")),
    _tool("test_elicitation", "Asks the user", _string_arg("message")),
    _tool("test_elicitation_sep1034_defaults", "Elicitation with defaults"),
    _tool("test_elicitation_sep1330_enums", "Elicitation with enums"),
    _tool("test_missing_capability", "Needs sampling"),
    _tool("test_streaming_elicitation", "Input required on a streamed response"),
    _tool("test_logging_tool", "Logs if asked"),
    _tool("test_input_required_result_elicitation", "MRTR elicitation"),
    _tool("test_input_required_result_sampling", "MRTR sampling"),
    _tool("test_input_required_result_list_roots", "MRTR roots"),
    _tool("test_input_required_result_request_state", "MRTR state round trip"),
    _tool("test_input_required_result_tampered_state", "MRTR tamper check"),
    _tool("test_input_required_result_multiple_inputs", "MRTR three inputs"),
    _tool("test_input_required_result_multi_round", "MRTR two rounds"),
    _tool("test_input_required_result_capabilities", "MRTR capability aware"),
    _tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", SCHEMA_2020_12),
    _tool("test_header_param", "Mirrors a header parameter", {
        "type": "object",
        "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}},
        "required": ["region"]}),
]


def _answer(ctx, key: str) -> dict[str, Any] | None:
    reply = (ctx.input_responses or {}).get(key)
    return reply if isinstance(reply, dict) else None


def _elicited(ctx, key: str, message: str, schema: dict[str, Any], done):
    reply = _answer(ctx, key)
    if reply is None:
        return InputRequired({key: elicitation_request(message, schema)})
    return done(reply)


class ConformanceFixtures(Backend):
    """The suite's tools, resources, prompts and completions; a tool ``x`` is listed in
    ``tools`` and answered by ``tool_x``."""

    features = frozenset({"tools", "resources", "resource_subscriptions", "prompts", "completions", "logging"})
    tools = TOOLS

    def list_tools(self, ctx):
        return self.tools

    def call_tool(self, ctx, name, arguments):
        handler = getattr(self, "tool_" + name, None)
        if handler is None or not any(t["name"] == name for t in self.tools):
            raise ToolNotFound(name)
        return handler(ctx, arguments)

    # --- content ---
    def tool_test_simple_text(self, ctx, args):
        return c.tool_result([c.text("This is a simple text response for testing.")])

    def tool_test_image_content(self, ctx, args):
        return c.tool_result([c.image(PNG_1PX, "image/png")])

    def tool_test_audio_content(self, ctx, args):
        return c.tool_result([c.audio(WAV_TINY, "audio/wav")])

    def tool_test_embedded_resource(self, ctx, args):
        return c.tool_result([c.embedded_resource(c.text_resource_contents(
            "test://embedded-resource", "This is an embedded resource content.", "text/plain"))])

    def tool_test_multiple_content_types(self, ctx, args):
        return c.tool_result([
            c.text("Multiple content types test:"),
            c.image(PNG_1PX, "image/png"),
            c.embedded_resource(c.text_resource_contents(
                "test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json")),
        ])

    def tool_test_error_handling(self, ctx, args):
        return c.tool_error("This tool intentionally returns an error for testing")

    def tool_json_schema_2020_12_tool(self, ctx, args):
        return c.tool_result([c.text("ok")])

    def tool_test_header_param(self, ctx, args):
        return c.tool_result([c.text(f"region={args.get('region')}")])

    # --- notifications while running ---
    def tool_test_tool_with_logging(self, ctx, args):
        for i, message in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
            if i:
                time.sleep(STEP_PAUSE_S)
            ctx.log("info", message)
        return c.tool_result([c.text("Logging tool executed")])

    def tool_test_tool_with_progress(self, ctx, args):
        for i, step in enumerate((0, 50, 100)):
            if i:
                time.sleep(STEP_PAUSE_S)
            ctx.report_progress(step, 100)
        return c.tool_result([c.text("Progress tool executed")])

    def tool_test_logging_tool(self, ctx, args):
        ctx.log("info", "log line")
        return c.tool_result([c.text("logged")])

    # --- client input (handshake: server-to-client requests; 2026-07-28: input_required rounds) ---
    def tool_test_sampling(self, ctx, args):
        reply = _answer(ctx, "llm")
        if reply is None:
            return InputRequired({"llm": sampling_request(
                [{"role": "user", "content": {"type": "text", "text": str(args.get("prompt", ""))}}], 100)})
        content = reply.get("content") if isinstance(reply.get("content"), dict) else {}
        return c.tool_result([c.text(f"LLM response: {content.get('text', '')}")])

    def tool_test_elicitation(self, ctx, args):
        schema = {"type": "object", "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}},
            "required": ["username", "email"]}
        return _elicited(ctx, "answer", str(args.get("message", "")), schema, lambda r: c.tool_result([c.text(
            f"User response: action={r.get('action')}, content={json.dumps(r.get('content', {}))}")]))

    def _completed(self, reply):
        return c.tool_result([c.text(
            f"Elicitation completed: action={reply.get('action')}, content={json.dumps(reply.get('content', {}))}")])

    def tool_test_elicitation_sep1034_defaults(self, ctx, args):
        return _elicited(ctx, "defaults", "Please review these defaults", SEP1034_SCHEMA, self._completed)

    def tool_test_elicitation_sep1330_enums(self, ctx, args):
        return _elicited(ctx, "enums", "Please choose", SEP1330_SCHEMA, self._completed)

    def tool_test_missing_capability(self, ctx, args):
        return InputRequired({"q": sampling_request([{"role": "user", "content": {"type": "text", "text": "hi"}}], 10)})

    def tool_test_streaming_elicitation(self, ctx, args):
        ctx.log("info", "about to ask")
        return _elicited(ctx, "q", "Anything?", EMPTY, lambda r: c.tool_result([c.text("thanks")]))

    def tool_test_input_required_result_elicitation(self, ctx, args):
        reply = _answer(ctx, "user_name")
        if reply and isinstance(reply.get("content"), dict) and "name" in reply["content"]:
            return c.tool_result([c.text(f"Hello, {reply['content']['name']}!")])
        return InputRequired({"user_name": elicitation_request("What is your name?", NAME_SCHEMA)})

    def tool_test_input_required_result_sampling(self, ctx, args):
        reply = _answer(ctx, "capital_question")
        if reply is not None:
            content = reply.get("content") if isinstance(reply.get("content"), dict) else {}
            return c.tool_result([c.text(f"LLM said: {content.get('text', '')}")])
        return InputRequired({"capital_question": sampling_request(
            [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], 100)})

    def tool_test_input_required_result_list_roots(self, ctx, args):
        reply = _answer(ctx, "client_roots")
        if reply is not None:
            roots = reply.get("roots") if isinstance(reply.get("roots"), list) else []
            return c.tool_result([c.text("Roots: " + ", ".join(str(r.get("uri", "")) for r in roots
                                                              if isinstance(r, dict)))])
        return InputRequired({"client_roots": list_roots_request()})

    def tool_test_input_required_result_request_state(self, ctx, args):
        if ctx.state is not None and ctx.state.get("nonce") == "n1" and _answer(ctx, "confirm") is not None:
            return c.tool_result([c.text("state-ok")])
        return InputRequired({"confirm": elicitation_request("Please confirm", {
            "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})}, state={"nonce": "n1"})

    tool_test_input_required_result_tampered_state = tool_test_input_required_result_request_state

    def tool_test_input_required_result_multiple_inputs(self, ctx, args):
        keys = ("user_name", "greeting", "client_roots")
        if ctx.state is not None and all(_answer(ctx, k) is not None for k in keys):
            return c.tool_result([c.text("all inputs received")])
        return InputRequired({
            "user_name": elicitation_request("What is your name?", NAME_SCHEMA),
            "greeting": sampling_request(
                [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], 50),
            "client_roots": list_roots_request(),
        }, state={"round": 1})

    def tool_test_input_required_result_multi_round(self, ctx, args):
        state = ctx.state or {}
        if state.get("step") == 2 and _answer(ctx, "step2") is not None:
            color = (_answer(ctx, "step2").get("content") or {}).get("color")
            return c.tool_result([c.text(f"{state.get('name')} likes {color}")])
        if _answer(ctx, "step1") is not None:
            name = (_answer(ctx, "step1").get("content") or {}).get("name")
            return InputRequired({"step2": elicitation_request("Step 2: What is your favorite color?", {
                "type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]})},
                state={"step": 2, "name": name})
        return InputRequired({"step1": elicitation_request("Step 1: What is your name?", NAME_SCHEMA)},
                             state={"step": 1})

    def tool_test_input_required_result_capabilities(self, ctx, args):
        if ctx.input_responses:
            return c.tool_result([c.text("done")])
        wanted = {}
        if ctx.client_supports("elicitation"):
            wanted["ask"] = elicitation_request("Name?", NAME_SCHEMA)
        if ctx.client_supports("sampling"):
            wanted["llm"] = sampling_request([{"role": "user", "content": {"type": "text", "text": "Hi"}}], 50)
        if ctx.client_supports("roots"):
            wanted["roots"] = list_roots_request()
        return InputRequired(wanted) if wanted else c.tool_result([c.text("no input possible")])

    # --- resources ---
    def list_resources(self, ctx):
        return [
            {"uri": "test://static-text", "name": "static-text", "description": "Static text resource",
             "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "Static binary resource",
             "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "description": "Subscribable resource",
             "mimeType": "text/plain"},
        ]

    def list_resource_templates(self, ctx):
        return [{"uriTemplate": "test://template/{id}/data", "name": "template-data",
                 "description": "Data by id", "mimeType": "application/json"}]

    def read_resource(self, ctx, uri):
        if uri == "test://static-text":
            return [c.text_resource_contents(uri, "This is the content of the static text resource.", "text/plain")]
        if uri == "test://static-binary":
            return [c.blob_resource_contents(uri, PNG_1PX, "image/png")]
        if uri == "test://watched-resource":
            return [c.text_resource_contents(uri, "Watched resource content.", "text/plain")]
        prefix, suffix = "test://template/", "/data"
        if uri.startswith(prefix) and uri.endswith(suffix) and len(uri) > len(prefix) + len(suffix):
            ident = uri[len(prefix):-len(suffix)]
            body = json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"})
            return [c.text_resource_contents(uri, body, "application/json")]
        raise ResourceNotFound(uri)

    # --- prompts ---
    def list_prompts(self, ctx):
        return [
            {"name": "test_simple_prompt", "description": "A simple prompt"},
            {"name": "test_prompt_with_arguments", "description": "A prompt with arguments", "arguments": [
                {"name": "arg1", "description": "First argument", "required": True},
                {"name": "arg2", "description": "Second argument", "required": True}]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt with a resource", "arguments": [
                {"name": "resourceUri", "description": "URI of the resource to embed", "required": True}]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image"},
            {"name": "test_input_required_result_prompt", "description": "A prompt that needs context"},
        ]

    def get_prompt(self, ctx, name, arguments):
        if name == "test_simple_prompt":
            return {"messages": [{"role": "user", "content": c.text("This is a simple prompt for testing.")}]}
        if name == "test_prompt_with_arguments":
            text = f"Prompt with arguments: arg1='{arguments.get('arg1', '')}', arg2='{arguments.get('arg2', '')}'"
            return {"messages": [{"role": "user", "content": c.text(text)}]}
        if name == "test_prompt_with_embedded_resource":
            uri = arguments.get("resourceUri") or "test://example-resource"
            return {"messages": [
                {"role": "user", "content": c.embedded_resource(
                    c.text_resource_contents(uri, "Embedded resource content for testing.", "text/plain"))},
                {"role": "user", "content": c.text("Please process the embedded resource above.")},
            ]}
        if name == "test_prompt_with_image":
            return {"messages": [
                {"role": "user", "content": c.image(PNG_1PX, "image/png")},
                {"role": "user", "content": c.text("Please analyze the image above.")},
            ]}
        if name == "test_input_required_result_prompt":
            reply = _answer(ctx, "user_context")
            if reply is not None:
                context = (reply.get("content") or {}).get("context", "")
                return {"messages": [{"role": "user", "content": c.text(f"Context: {context}")}]}
            return InputRequired({"user_context": elicitation_request("What context should the prompt use?", {
                "type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]})})
        raise PromptNotFound(name)

    def complete(self, ctx, ref, argument, context):
        words = ["paris", "park", "party", "python"]
        typed = str(argument.get("value") or "")
        return {"values": [w for w in words if w.startswith(typed)]}

