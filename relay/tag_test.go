package relay

import (
	"encoding/json"
	"strings"
	"testing"
)

func raws(ss ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(ss))
	for i, s := range ss {
		out[i] = json.RawMessage(s)
	}
	return out
}

func TestFlattenTAGTools(t *testing.T) {
	// Odd but valid formatting and key order must survive untouched.
	search := `{ "description" : "find <things> & more",
	  "name":"search",  "inputSchema":{"type":"object","properties":{"q":{"type":"string","name":"not-this"}}} }`
	servers := []ServerInfo{
		{Name: "github", Tools: raws(search, `{"name":"create_issue","inputSchema":{"type":"object"}}`)},
		{Name: "docs", Tools: raws(`{"inputSchema":{"type":"object"},"name" :  "search","title":"Search docs"}`)},
		{Name: "clock", Tools: raws(`{"name":"now","annotations":{"readOnlyHint":true}}`)},
		{Name: "empty"},
	}
	tools, routes, err := FlattenTAGTools(servers)
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		strings.Replace(search, `"search"`, `"github__search"`, 1) + `,` +
		`{"name":"create_issue","inputSchema":{"type":"object"}},` +
		`{"inputSchema":{"type":"object"},"name" :  "docs__search","title":"Search docs"},` +
		`{"name":"now","annotations":{"readOnlyHint":true}}]`
	if string(tools) != want {
		t.Fatalf("tools =\n%s\nwant\n%s", tools, want)
	}
	if !json.Valid(tools) {
		t.Fatal("result is not valid JSON")
	}
	wantRoutes := map[string]TAGRoute{
		"github__search": {"github", "search"},
		"create_issue":   {"github", "create_issue"},
		"docs__search":   {"docs", "search"},
		"now":            {"clock", "now"},
	}
	if len(routes) != len(wantRoutes) {
		t.Fatalf("routes = %v", routes)
	}
	for name, r := range wantRoutes {
		if routes[name] != r {
			t.Errorf("routes[%q] = %v, want %v", name, routes[name], r)
		}
	}
}

func TestFlattenTAGToolsEmptyAndErrors(t *testing.T) {
	tools, routes, err := FlattenTAGTools(nil)
	if err != nil || string(tools) != "[]" || len(routes) != 0 {
		t.Fatalf("empty: %s %v %v", tools, routes, err)
	}
	for _, tc := range []struct {
		name    string
		servers []ServerInfo
	}{
		{"not an object", []ServerInfo{{Name: "a", Tools: raws(`["x"]`)}}},
		{"no name", []ServerInfo{{Name: "a", Tools: raws(`{"title":"x"}`)}}},
		{"name not a string", []ServerInfo{{Name: "a", Tools: raws(`{"name":3}`)}}},
		{"empty name", []ServerInfo{{Name: "a", Tools: raws(`{"name":""}`)}}},
		{"case-different key is not the name", []ServerInfo{{Name: "a", Tools: raws(`{"Name":"x"}`)}}},
		{"broken json", []ServerInfo{{Name: "a", Tools: raws(`{"name":"x",}`)}}},
		{"prefix clash", []ServerInfo{
			{Name: "a", Tools: raws(`{"name":"b__c"}`)},
			{Name: "b", Tools: raws(`{"name":"c"}`)},
			{Name: "d", Tools: raws(`{"name":"c"}`)},
		}},
	} {
		if _, _, err := FlattenTAGTools(tc.servers); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestRenameToolEscapesName(t *testing.T) {
	out, err := renameTool(json.RawMessage(`{"name":"x","n":1}`), `a"b<c`)
	if err != nil || string(out) != `{"name":"a\"b<c","n":1}` {
		t.Fatalf("renameTool = %s, %v", out, err)
	}
}
