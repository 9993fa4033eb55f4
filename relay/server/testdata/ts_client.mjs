// Lists tools and calls echo through the relay with the official TS SDK
// client (StreamableHTTPClientTransport). Prints one JSON line.
// Env: SDK_DIR (the @modelcontextprotocol/sdk folder), MCP_URL, MCP_TOKEN.
import { pathToFileURL } from "node:url";

const sdk = process.env.SDK_DIR;
const { Client } = await import(pathToFileURL(`${sdk}/dist/esm/client/index.js`).href);
const { StreamableHTTPClientTransport } = await import(pathToFileURL(`${sdk}/dist/esm/client/streamableHttp.js`).href);

const transport = new StreamableHTTPClientTransport(new URL(process.env.MCP_URL), {
  requestInit: { headers: { Authorization: `Bearer ${process.env.MCP_TOKEN}` } },
});
const client = new Client({ name: "ts-relay-test", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const res = await client.callTool({ name: "echo", arguments: { message: "from ts" } });
const out = {
  tools: tools.tools.map((t) => t.name),
  text: res.content[0].text,
  sessionId: transport.sessionId ?? "",
  protocol: transport.protocolVersion ?? "",
};
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
