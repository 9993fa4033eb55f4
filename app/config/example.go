package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// exampleConfig is the mcp.json written on first run: it explains the
// format in comments and defines example servers, all disabled, so a fresh
// install shares nothing until the user says so.
const exampleConfig = `// Tether: the MCP servers this computer shares with your agents.
//
// The format is Claude Desktop's mcp.json ("mcpServers"), and comments and
// trailing commas are allowed. Every server that is not disabled is reachable
// through your relay at <relay>/mcp/<your-id>/<server-name>. Tether reloads
// this file when you save it.
//
// Keys of a server:
//   "command", "args", "env", "cwd"  a local (stdio) server that Tether starts
//   "url", "headers"                 an HTTP MCP server that Tether connects to
//   "disabled": true                 keep it here, but don't run or share it
//   "allow", "deny": ["glob*"]       which tools agents may see (deny wins)
//   "era": "2025" or "2026"          pin the MCP protocol generation (normally detected)
//   "shareStderr": true              show agents this server's stderr in its errors
//                                    (off: they see only "exited with status 1" etc.)
//
// ${VAR} in any string comes from your environment or from the .env file next
// to this one (KEY=VALUE lines), so secrets need not be written here.
// Server names may use letters, digits, "-", "_" and ".".
{
  "mcpServers": {
    // A test server with many tools. Delete the "disabled" line to try it.
    "everything": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything"],
      "disabled": true,
    },

    // An HTTP MCP server, e.g. one inside your VPN. Put the token in .env:
    //   INTERNAL_DOCS_TOKEN=...
    "internal-docs": {
      "url": "https://mcp.internal.example.com/mcp",
      "headers": {"Authorization": "Bearer ${INTERNAL_DOCS_TOKEN}"},
      "disabled": true,
    },

    // Share only some tools: the read-only ones ("allow"), but not images
    // ("deny" wins over "allow"). Patterns: * any text, ? one character.
    "files": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "~/Documents"],
      "allow": ["read_*", "list_*", "search_*", "get_*", "directory_tree"],
      "deny": ["read_media_file"],
      "disabled": true,
    },
  },
}
`

// EnsureExample writes exampleConfig to path (mode 0600) unless a
// file is already there; it never overwrites. created says whether it wrote.
func EnsureExample(path string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create config folder: %w", err)
	}
	// O_EXCL makes "does it exist?" and "create it" one step, so a file
	// the user (or another Tether) creates meanwhile is never clobbered.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create example config: %w", err)
	}
	_, werr := f.WriteString(exampleConfig)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path) // don't leave half an example behind
		return false, fmt.Errorf("write example config: %w", werr)
	}
	return true, nil
}
