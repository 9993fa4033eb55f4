// Package schema holds wire constants shared between the test MCP server
// (internal/testservers/mcpserver) and the tests that check tools/list
// output is relayed without losing JSON Schema 2020-12 features.
package schema

// SchemaToolInput is the exact input schema of the mcpserver "schema_tool".
// It deliberately uses "$schema", a "$defs" entry referenced by "$ref" and
// "additionalProperties": false, the features a lossy proxy tends to drop.
// Compare it semantically (unmarshal both sides), not byte for byte: the SDK
// may re-indent it on the wire.
const SchemaToolInput = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "word": {"type": "string", "minLength": 1}
  },
  "properties": {
    "word": {"$ref": "#/$defs/word"},
    "count": {"type": "integer", "minimum": 0}
  },
  "required": ["word"],
  "additionalProperties": false
}`
