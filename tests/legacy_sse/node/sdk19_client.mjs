// A 2024-11-05 client: the TypeScript SDK 1.9.0 over HTTP+SSE. Prints one JSON line with what it saw.
// Usage: node sdk19_client.mjs <sse url> <bearer token>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

const [url, token] = process.argv.slice(2);
const auth = { headers: { Authorization: `Bearer ${token}` } };
const transport = new SSEClientTransport(new URL(url), {
  requestInit: auth,
  eventSourceInit: { fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers || {}), ...auth.headers } }) },
});
const received = [];  // every message the server sent, as the SDK parsed it off the stream
Object.defineProperty(transport, "onmessage", {
  set(handler) { this._record = (message) => { received.push(message); handler(message); }; },
  get() { return this._record; },
});
const client = new Client({ name: "sdk-1.9", version: "1.9.0" });
await client.connect(transport);
const tools = await client.listTools();
const called = await client.callTool({ name: "echo", arguments: { text: "hello 2024" } });
const prompt = await client.getPrompt({ name: "triage_ticket", arguments: { message: "Printer on fire" } });
console.log(JSON.stringify({
  serverInfo: client.getServerVersion(), tools: tools.tools, nextCursor: tools.nextCursor ?? null, called, prompt,
  received,
}));
await client.close();
