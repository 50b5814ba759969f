"""In-memory Backend serving the conformance suite's fixtures (tools, resources, prompts)."""
from __future__ import annotations

import json
from typing import Any

from mcp_tools.protocol import content as c
from mcp_tools.protocol.backend import Backend, ResourceNotFound, ToolNotFound, PromptNotFound
from mcp_tools.protocol.context import (
    InputRequired,
    RequestContext,
    elicitation_request,
    list_roots_request,
    sampling_request,
)

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_TINY = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
EMPTY_INPUT = {"type": "object", "properties": {}}
JSON_SCHEMA_2020_12 = {
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
CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def _answered(ctx, *keys):
    responses = ctx.input_responses or {}
    return all(isinstance(responses.get(k), dict) for k in keys)


def _tool(name: str, description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": schema or EMPTY_INPUT, **extra}


class FakeBackend(Backend):
    features = frozenset({"tools", "resources", "resource_subscriptions", "prompts", "completions", "logging"})
    list_changed = frozenset({"tools"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.subscribed: list[str] = []

    # --- tools ---
    def list_tools(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return [
            _tool("test_simple_text", "Returns simple text"),
            _tool("test_image_content", "Returns an image"),
            _tool("test_audio_content", "Returns audio"),
            _tool("test_embedded_resource", "Returns an embedded resource"),
            _tool("test_multiple_content_types", "Returns mixed content"),
            _tool("test_tool_with_logging", "Logs while running"),
            _tool("test_tool_with_progress", "Reports progress"),
            _tool("test_error_handling", "Always fails"),
            _tool("test_structured", "Returns structured content", title="Structured",
                  outputSchema={"type": "object", "properties": {"n": {"type": "integer"}}}),
            _tool("test_sampling", "Asks the client LLM",
                  {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}),
            _tool("test_elicitation", "Asks the user",
                  {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
            _tool("test_missing_capability", "Needs sampling"),
            _tool("test_input_required_result_elicitation", "MRTR elicitation"),
            _tool("test_input_required_result_multi_round", "MRTR two rounds"),
            _tool("test_input_required_result_capabilities", "MRTR capability aware"),
            _tool("test_crash", "Raises an unexpected exception"),
            _tool("test_input_required_result_sampling", "MRTR sampling"),
            _tool("test_input_required_result_list_roots", "MRTR roots"),
            _tool("test_input_required_result_request_state", "MRTR state round-trip"),
            _tool("test_input_required_result_multiple_inputs", "MRTR three inputs"),
            _tool("test_input_required_result_tampered_state", "MRTR tamper check"),
            _tool("test_streaming_elicitation", "MRTR on a streamed response"),
            _tool("test_logging_tool", "Logs if asked"),
            _tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", JSON_SCHEMA_2020_12),
            _tool("test_header_param", "Mirrors region into a header", {
                "type": "object",
                "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}},
                "required": ["region"]}),
        ]

    def call_tool(self, ctx: RequestContext, name: str, arguments: dict[str, Any]):
        self.calls.append((name, arguments))
        handler = getattr(self, "_tool_" + name, None)
        if handler is None:
            raise ToolNotFound(name)
        return handler(ctx, arguments)

    def _tool_test_simple_text(self, ctx, args):
        return c.tool_result([c.text("This is a simple text response for testing.")])

    def _tool_test_image_content(self, ctx, args):
        return c.tool_result([c.image(PNG_1PX, "image/png")])

    def _tool_test_audio_content(self, ctx, args):
        return c.tool_result([c.audio(WAV_TINY, "audio/wav")])

    def _tool_test_embedded_resource(self, ctx, args):
        return c.tool_result([c.embedded_resource(c.text_resource_contents(
            "test://embedded-resource", "This is an embedded resource content.", "text/plain"))])

    def _tool_test_multiple_content_types(self, ctx, args):
        return c.tool_result([
            c.text("Multiple content types test:"),
            c.image(PNG_1PX, "image/png"),
            c.embedded_resource(c.text_resource_contents(
                "test://mixed-content-resource", json.dumps({"test": "data", "value": 123}), "application/json")),
        ])

    def _tool_test_tool_with_logging(self, ctx, args):
        for msg in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            ctx.log("info", msg)
        return c.tool_result([c.text("Logging tool executed")])

    def _tool_test_tool_with_progress(self, ctx, args):
        for step in (0, 50, 100):
            ctx.report_progress(step, 100)
        return c.tool_result([c.text("Progress tool executed")])

    def _tool_test_error_handling(self, ctx, args):
        return c.tool_error("This tool intentionally returns an error for testing")

    def _tool_test_structured(self, ctx, args):
        return c.tool_result(structured={"n": 7})

    def _tool_test_crash(self, ctx, args):
        raise KeyError("secret internal detail")

    def _tool_test_sampling(self, ctx, args):
        # Handshake era: a direct server-to-client request.
        reply = ctx.send_request("sampling/createMessage", {
            "messages": [{"role": "user", "content": {"type": "text", "text": args.get("prompt", "")}}],
            "maxTokens": 100,
        })
        return c.tool_result([c.text(f"LLM response: {reply['content']['text']}")])

    def _tool_test_elicitation(self, ctx, args):
        # Written once with InputRequired: works in both eras.
        if ctx.input_responses and "answer" in ctx.input_responses:
            reply = ctx.input_responses["answer"]
            return c.tool_result([c.text(f"User response: action={reply.get('action')}, "
                                         f"content={json.dumps(reply.get('content', {}))}")])
        return InputRequired({"answer": elicitation_request(args.get("message", ""), {
            "type": "object",
            "properties": {"username": {"type": "string"}, "email": {"type": "string"}},
            "required": ["username", "email"],
        })})

    def _tool_test_missing_capability(self, ctx, args):
        return InputRequired({"q": sampling_request(
            [{"role": "user", "content": {"type": "text", "text": "hi"}}], 10)})

    def _tool_test_input_required_result_elicitation(self, ctx, args):
        reply = (ctx.input_responses or {}).get("user_name")
        if reply and isinstance(reply.get("content"), dict) and "name" in reply["content"]:
            return c.tool_result([c.text(f"Hello, {reply['content']['name']}!")])
        return InputRequired({"user_name": elicitation_request("What is your name?", NAME_SCHEMA)})

    def _tool_test_input_required_result_multi_round(self, ctx, args):
        responses = ctx.input_responses or {}
        if ctx.state and ctx.state.get("step") == 2 and "step2" in responses:
            color = responses["step2"].get("content", {}).get("color")
            return c.tool_result([c.text(f"{ctx.state['name']} likes {color}")])
        if "step1" in responses:
            name = responses["step1"].get("content", {}).get("name")
            return InputRequired(
                {"step2": elicitation_request("Step 2: What is your favorite color?", {
                    "type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]})},
                state={"step": 2, "name": name},
            )
        return InputRequired({"step1": elicitation_request("Step 1: What is your name?", NAME_SCHEMA)},
                             state={"step": 1})

    def _tool_test_input_required_result_capabilities(self, ctx, args):
        if ctx.input_responses:
            return c.tool_result([c.text("done")])
        wanted = {}
        if ctx.client_supports("elicitation"):
            wanted["ask"] = elicitation_request("Name?", NAME_SCHEMA)
        if ctx.client_supports("sampling"):
            wanted["llm"] = sampling_request([{"role": "user", "content": {"type": "text", "text": "Hi"}}], 50)
        if ctx.client_supports("roots"):
            wanted["roots"] = list_roots_request()
        if not wanted:
            return c.tool_result([c.text("no input possible")])
        return InputRequired(wanted)

    def _tool_test_input_required_result_sampling(self, ctx, args):
        if _answered(ctx, "capital_question"):
            reply = ctx.input_responses["capital_question"].get("content", {})
            return c.tool_result([c.text(f"LLM said: {reply.get('text', '')}")])
        return InputRequired({"capital_question": sampling_request(
            [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], 100)})

    def _tool_test_input_required_result_list_roots(self, ctx, args):
        if _answered(ctx, "client_roots"):
            roots = ctx.input_responses["client_roots"].get("roots", [])
            return c.tool_result([c.text("Roots: " + ", ".join(r.get("uri", "") for r in roots))])
        return InputRequired({"client_roots": list_roots_request()})

    def _tool_test_input_required_result_request_state(self, ctx, args):
        # ctx.state is only set once the dispatcher verified the signed requestState.
        if ctx.state is not None and ctx.state.get("nonce") == "n1" and _answered(ctx, "confirm"):
            return c.tool_result([c.text("state-ok")])
        return InputRequired({"confirm": elicitation_request("Please confirm", CONFIRM_SCHEMA)}, state={"nonce": "n1"})

    _tool_test_input_required_result_tampered_state = _tool_test_input_required_result_request_state

    def _tool_test_input_required_result_multiple_inputs(self, ctx, args):
        if ctx.state is not None and _answered(ctx, "user_name", "greeting", "client_roots"):
            return c.tool_result([c.text("all inputs received")])
        return InputRequired({
            "user_name": elicitation_request("What is your name?", NAME_SCHEMA),
            "greeting": sampling_request(
                [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], 50),
            "client_roots": list_roots_request(),
        }, state={"round": 1})

    def _tool_test_streaming_elicitation(self, ctx, args):
        ctx.log("info", "about to ask")
        if _answered(ctx, "q"):
            return c.tool_result([c.text("thanks")])
        return InputRequired({"q": elicitation_request("Anything?", {"type": "object", "properties": {}})})

    def _tool_test_logging_tool(self, ctx, args):
        ctx.log("info", "log line")
        return c.tool_result([c.text("logged")])

    def _tool_json_schema_2020_12_tool(self, ctx, args):
        return c.tool_result([c.text("ok")])

    def _tool_test_header_param(self, ctx, args):
        return c.tool_result([c.text(f"region={args.get('region')}")])

    # --- resources ---
    def list_resources(self, ctx):
        return [
            {"uri": "test://static-text", "name": "static-text", "description": "Static text", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "PNG", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched", "description": "Watched", "mimeType": "text/plain"},
        ]

    def list_resource_templates(self, ctx):
        return [{"uriTemplate": "test://template/{id}/data", "name": "template", "description": "By id",
                 "mimeType": "application/json"}]

    def read_resource(self, ctx, uri):
        if uri == "test://static-text":
            return [c.text_resource_contents(uri, "This is the content of the static text resource.", "text/plain")]
        if uri == "test://static-binary":
            return [c.blob_resource_contents(uri, PNG_1PX, "image/png")]
        if uri.startswith("test://template/") and uri.endswith("/data"):
            ident = uri[len("test://template/"):-len("/data")]
            body = json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"})
            return [c.text_resource_contents(uri, body, "application/json")]
        if uri == "test://empty":
            return []
        raise ResourceNotFound(uri)

    def subscribe(self, ctx, uri):
        self.subscribed.append(uri)

    def unsubscribe(self, ctx, uri):
        self.subscribed.remove(uri)

    # --- prompts ---
    def list_prompts(self, ctx):
        return [
            {"name": "test_simple_prompt", "description": "Simple"},
            {"name": "test_prompt_with_arguments", "description": "With args", "arguments": [
                {"name": "arg1", "description": "First", "required": True},
                {"name": "arg2", "description": "Second", "required": True}]},
            {"name": "test_input_required_result_prompt", "description": "Needs context"},
            {"name": "test_prompt_with_embedded_resource", "description": "Embeds a resource", "arguments": [
                {"name": "resourceUri", "description": "URI to embed", "required": True}]},
            {"name": "test_prompt_with_image", "description": "Has an image"},
        ]

    def get_prompt(self, ctx, name, arguments):
        if name == "test_simple_prompt":
            return {"messages": [{"role": "user", "content": c.text("This is a simple prompt for testing.")}]}
        if name == "test_prompt_with_arguments":
            text = f"Prompt with arguments: arg1='{arguments.get('arg1')}', arg2='{arguments.get('arg2')}'"
            return {"messages": [{"role": "user", "content": c.text(text)}]}
        if name == "test_input_required_result_prompt":
            reply = (ctx.input_responses or {}).get("user_context")
            if reply:
                return {"messages": [{"role": "user", "content": c.text(f"Context: {reply['content']['context']}")}]}
            return InputRequired({"user_context": elicitation_request(
                "What context should the prompt use?",
                {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]})})
        if name == "test_prompt_with_embedded_resource":
            uri = arguments.get("resourceUri", "test://example-resource")
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
        raise PromptNotFound(name)

    # --- completion ---
    def complete(self, ctx, ref, argument, context):
        words = ["paris", "park", "party", "python"]
        return {"values": [w for w in words if w.startswith(argument.get("value", ""))]}
