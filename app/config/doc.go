// Package config reads and edits the files of the Tether folder: mcp.json
// (the servers to share, JWCC, with ${VAR} from the environment and .env),
// settings.json, and other apps' MCP configs to import from; and it watches
// that folder for edits. It knows nothing about the engine that runs the
// servers: app imports it, never the reverse.
//
// It imports mcpchild for Spec and Era: a server in mcp.json is exactly the
// JSON of an mcpchild.Spec plus Tether's own keys, so decoding straight
// into that type keeps one definition of the format. A copy here would need
// a conversion and a test that the two stay in step, for no gain: mcpchild
// is a leaf that imports nothing of Tether's.
package config
