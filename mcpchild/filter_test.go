package mcpchild

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/mcpwire"
)

// listAllTools pages through tools/list on a session and returns the names.
func listAllTools(cl *client, meta map[string]any) []string {
	cl.t.Helper()
	var names []string
	cursor := ""
	for range 100 {
		params := map[string]any{}
		if meta != nil {
			params["_meta"] = meta
		}
		if cursor != "" {
			params["cursor"] = cursor
		}
		var r struct {
			Tools      []struct{ Name string } `json:"tools"`
			NextCursor string                  `json:"nextCursor"`
		}
		if err := json.Unmarshal(cl.mustCall("tools/list", params), &r); err != nil {
			cl.t.Fatal(err)
		}
		for _, tl := range r.Tools {
			names = append(names, tl.Name)
		}
		if cursor = r.NextCursor; cursor == "" {
			return names
		}
	}
	cl.t.Fatal("tools/list did not end")
	return nil
}

func has(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// The allow/deny filter changes at runtime without a restart: both eras of
// session hear list_changed, their tools/list pages (decoded from the child
// page by page) lose the denied tools, a call of one is answered by the
// bridge, and Tools/Status count only what is allowed.
func TestToolFilterAtRuntimeBothSessionEras(t *testing.T) {
	opts := testOptions(t)
	w := watchStatus(&opts)
	calls := make(chan CallInfo, 100)
	opts.OnCall = func(ci CallInfo) { calls <- ci }
	c := startTestServer(t, opts, "-extra-tools", "30", "-page-size", "7")
	pid := c.Status().Pid
	total := c.Status().ToolCount

	legacy := newClient(t, c, "legacy")
	legacy.initialize("2025-11-25")
	modern := newClient(t, c, "modern")
	modern.mustCall("server/discover", map[string]any{"_meta": modernMeta("m")})
	listenID, _ := modern.request("subscriptions/listen", map[string]any{"_meta": modernMeta("m"),
		"notifications": map[string]any{"toolsListChanged": true}})
	modern.waitOther("the listen acknowledgement", methodIs("notifications/subscriptions/acknowledged"))

	denied := map[string]bool{"sleep": true, "extra_012": true}
	c.SetToolFilter(func(name string) bool { return !denied[name] })

	legacy.waitOther("plain list_changed", methodIs("notifications/tools/list_changed"))
	d := modern.waitOther("list_changed on the listen", methodIs("notifications/tools/list_changed"))
	if sub := field(field(field(d.msg, "params"), "_meta"), mcpwire.MetaSubscriptionID); string(sub) != listenID || string(d.related) != listenID {
		t.Fatalf("list_changed for the 2026 session = %s (related %s), want subscription %s", d.msg, d.related, listenID)
	}
	st := w.wait(t, "the filtered count", func(s Status) bool { return s.Hidden == 2 })
	if st.ToolCount != total-2 || st.Pid != pid {
		t.Fatalf("status = %+v, want %d tools shown, same pid %d", st, total-2, pid)
	}
	if hasTool(c, "sleep") || hasTool(c, "extra_012") || !hasTool(c, "echo") {
		t.Fatal("Tools() does not follow the filter")
	}
	// What is pending at the child before the denied calls (the 2026
	// session's listen, where the child holds it; none where the bridge
	// does): a denied call must not add to it.
	pendingBefore := sessionPending(c)
	for _, tc := range []struct {
		cl   *client
		meta map[string]any
	}{{legacy, nil}, {modern, modernMeta("m")}} {
		names := listAllTools(tc.cl, tc.meta)
		if has(names, "sleep") || has(names, "extra_012") || !has(names, "extra_011") || !has(names, "extra_013") || len(names) != total-2 {
			t.Fatalf("%s session's tools/list = %v", tc.cl.s.ID(), names)
		}
		params := map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}}
		if tc.meta != nil {
			params["_meta"] = tc.meta
		}
		_, errObj := tc.cl.call("tools/call", params)
		if !contains(errObj, `"code":-32602`) || !contains(errObj, `tool \"sleep\" is not available through this bridge (blocked by allow/deny in mcp.json)`) {
			t.Fatalf("denied call answered %s", errObj)
		}
		if n := sessionPending(c); n != pendingBefore {
			t.Fatalf("denied call reached the child (%d pending, %d before)", n, pendingBefore)
		}
		ci := <-calls
		if ci.Outcome != OutcomeDenied || ci.Tool != "sleep" || ci.Session != tc.cl.s.ID() || !strings.Contains(ci.Error, "blocked") {
			t.Fatalf("OnCall for a denied call = %+v", ci)
		}
	}
	if _, err := c.Call(t.Context(), "tools/call", json.RawMessage(`{"name":"sleep","arguments":{"ms":1}}`)); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("Child.Call of a denied tool: %v", err)
	}

	c.SetToolFilter(nil)
	w.wait(t, "no hidden tools", func(s Status) bool { return s.Hidden == 0 && s.ToolCount == total })
	if got := legacy.toolText("sleep", map[string]any{"ms": 1}); got != "slept" {
		t.Fatalf("sleep after the filter was lifted = %q", got)
	}
	if names := listAllTools(modern, modernMeta("m")); !has(names, "sleep") || len(names) != total {
		t.Fatalf("tools/list after the filter was lifted = %v", names)
	}
}

// OnCall sees every finished tools/call once, with the right outcome.
func TestOnCallOutcomes(t *testing.T) {
	opts := testOptions(t)
	calls := make(chan CallInfo, 100)
	opts.OnCall = func(ci CallInfo) { calls <- ci }
	c := startTestServer(t, opts)
	cl := newClient(t, c, "ui")
	cl.initialize("2025-11-25")
	next := func(want string) CallInfo {
		t.Helper()
		select {
		case ci := <-calls:
			if ci.Outcome != want || ci.Session != "ui" || ci.Start.IsZero() || ci.Duration <= 0 || ci.Duration > time.Minute {
				t.Fatalf("OnCall = %+v, want outcome %s", ci, want)
			}
			return ci
		case <-time.After(30 * time.Second):
			t.Fatalf("no OnCall for the %s call", want)
		}
		return CallInfo{}
	}

	cl.toolText("echo", map[string]any{"text": "x"})
	if ci := next(OutcomeOK); ci.Tool != "echo" {
		t.Fatalf("tool = %q", ci.Tool)
	}
	cl.mustCall("tools/list", map[string]any{}) // not a call: no OnCall

	res := cl.mustCall("tools/call", map[string]any{"name": "add_tool", "arguments": map[string]any{}})
	if !contains(res, `"isError":true`) {
		t.Fatalf("add_tool without a name = %s", res)
	}
	next(OutcomeToolError)

	_, errObj := cl.call("tools/call", map[string]any{"name": "no_such_tool", "arguments": map[string]any{}})
	if errObj == nil {
		t.Fatal("unknown tool answered without an error")
	}
	if ci := next(OutcomeError); ci.Tool != "no_such_tool" || ci.Error == "" || ci.Error != unquote(field(errObj, "message")) {
		t.Fatalf("error call = %+v (error %s)", ci, errObj)
	}

	id, _ := cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	if err := cl.s.Handle(buildNotification("notifications/cancelled", []byte(`{"requestId":`+id+`}`))); err != nil {
		t.Fatal(err)
	}
	next(OutcomeCancelled)

	closing := newClient(t, c, "ui")
	closing.initialize("2025-11-25")
	closing.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	closing.s.Close()
	next(OutcomeCancelled)

	cl.request("tools/call", map[string]any{"name": "sleep", "arguments": map[string]any{"ms": 60000}})
	waitPending(t, c, 1)
	cl.request("tools/call", map[string]any{"name": "crash", "arguments": map[string]any{}})
	for range 2 {
		ci := <-calls
		if ci.Outcome != OutcomeFailed || !strings.Contains(ci.Error, "exit status 3") {
			t.Fatalf("call in flight at a crash: %+v", ci)
		}
	}
	select {
	case ci := <-calls:
		t.Fatalf("an extra OnCall: %+v", ci)
	default:
	}
}

// The filter decides on the tool name the child will read: names are
// compared decoded, and a name given twice (parsers disagree on which one
// wins) or also given in another case (encoding/json folds case) is in
// doubt and denied.
func TestToolNameReadsWhatTheChildReads(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		obj  string
		name string
		ok   bool
	}{
		{`{"name":"echo"}`, "echo", true},
		{`{"\u006eame":"echo"}`, "echo", true},
		{`{"name":"\u0065cho"}`, "echo", true},
		{`{"arguments":{}}`, "", true},
		{`{"name":"x","name":"echo"}`, "", false},
		{`{"name":"x","\u006eame":"echo"}`, "", false},
		{`{"name":"x","Name":"echo"}`, "", false},
		{`{"NAME":"echo"}`, "", false},
		{`{"name":1}`, "", false},
		{`{"name":"echo"`, "", false},
		{`{"name":"echo","arguments":{"a":1,"a":2}}`, "echo", true}, // nested objects are the tool's business
	} {
		name, ok := toolName([]byte(c.obj))
		if name != c.name || ok != c.ok {
			t.Errorf("toolName(%s) = %q, %v; want %q, %v", c.obj, name, ok, c.name, c.ok)
		}
	}
}

// FuzzToolName: whenever toolName accepts params, encoding/json — which
// folds case, takes the last of repeated members and decodes escapes, as
// go-sdk servers do — reads the same name from them: there is no spelling
// for which the filter decides on one tool and the child runs another.
// Plain `go test` runs the checked-in seeds.
func FuzzToolName(f *testing.F) {
	// The seeds are under testdata/fuzz/FuzzToolName: repeated names, escaped
	// keys, "Name"/"NAME", Unicode case folds, escapes, nested "name"s.
	f.Fuzz(func(t *testing.T, params string) {
		name, ok := toolName([]byte(params))
		if !ok {
			return
		}
		var p struct{ Name *string }
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			t.Fatalf("toolName(%s) = %q, but encoding/json cannot read the params: %v", params, name, err)
		}
		got := ""
		if p.Name != nil {
			got = *p.Name
		}
		if got != name {
			t.Fatalf("toolName(%s) = %q, encoding/json reads %q", params, name, got)
		}
	})
}

func TestFilterToolsResultReadsWhatTheClientReads(t *testing.T) {
	t.Parallel()
	allow := func(name string) bool { return name != "echo" }
	for _, c := range []struct{ result, want string }{
		{`{"tools":[{"name":"echo"},{"name":"add"}],"nextCursor":"x"}`, `{"tools":[{"name":"add"}],"nextCursor":"x"}`},
		{`{"tools":[{"\u006eame":"echo"},{"name":"x","name":"echo"},{"name":"x","Name":"echo"},{"name":"add"}]}`, `{"tools":[{"name":"add"}]}`},
		{`{"tools":[{"name":"add"}]}`, `{"tools":[{"name":"add"}]}`},
		{`{"tools":[{"name":"add"}],"tools":[{"name":"echo"}]}`, `{"tools":[]}`},
		{`{"tools":[{"name":"add"}],"\u0074ools":[{"name":"echo"}]}`, `{"tools":[]}`},
		{`{"tools":[{"name":"add"}],"Tools":[{"name":"echo"}]}`, `{"tools":[]}`},
		{`{"tools":{"name":"echo"}}`, `{"tools":[]}`},
		{`{"nextCursor":"x"}`, `{"nextCursor":"x"}`},
	} {
		if got := string(filterToolsResult([]byte(c.result), allow)); got != c.want {
			t.Errorf("filterToolsResult(%s) = %s, want %s", c.result, got, c.want)
		}
	}
}

// A client cannot reach a denied tool by spelling its name so that the
// filter and the child read different names: not in a 2025-11-25 session
// nor in a 2026-07-28 one, on a child of either era or of both, nor through
// Child.Call.
func TestToolFilterDecidesOnTheNameTheChildReads(t *testing.T) {
	for _, child := range []struct {
		name string
		args []string
	}{{"both", nil}, {"legacy", []string{"-era", "legacy"}}, {"modern", []string{"-era", "modern"}}} {
		t.Run(child.name, func(t *testing.T) {
			t.Parallel()
			c := startTestServer(t, testOptions(t), child.args...)
			c.SetToolFilter(func(name string) bool { return name != "echo" })
			for _, version := range []string{"2025-11-25", mcpwire.Version2026} {
				t.Run(version, func(t *testing.T) { checkFilterBypasses(t, c, version) })
			}
			for _, params := range filterBypasses {
				res, err := c.Call(t.Context(), "tools/call", json.RawMessage(params.params))
				if err == nil {
					t.Errorf("Child.Call with params %s = %s, want refused", params.params, res)
				}
			}
		})
	}
}

// filterBypasses are tools/call params that name the denied "echo" in a
// way a reader taking the first raw "name" member would miss, and what the
// bridge answers.
var filterBypasses = []struct {
	params, code, why string
}{
	// The same name twice: JSON.parse and encoding/json read "echo".
	{`{"name":"x","name":"echo","arguments":{"text":"hi"}}`, `"code":-32600`, "repeated member names"},
	// An escaped key is still the key "name".
	{`{"\u006eame":"echo","arguments":{"text":"hi"}}`, `"code":-32602`, `tool \"echo\" is not available`},
	// encoding/json matches "Name" to the name field.
	{`{"name":"x","Name":"echo","arguments":{"text":"hi"}}`, `"code":-32602`, "tool name is not one plain string"},
}

// checkFilterBypasses sends each of filterBypasses in a session of version
// and checks it is refused by the bridge, then that an allowed tool still
// answers in that session.
func checkFilterBypasses(t *testing.T, c *Child, version string) {
	cl := newClient(t, c, "sly")
	var meta map[string]any
	if version >= mcpwire.Version2026 {
		meta = modernMeta("sly")
		cl.mustCall("server/discover", map[string]any{"_meta": meta})
	} else {
		cl.initialize(version)
	}
	metaJSON, _ := json.Marshal(meta)
	for _, tc := range filterBypasses {
		params := tc.params
		if meta != nil {
			params = strings.TrimSuffix(params, "}") + `,"_meta":` + string(metaJSON) + "}"
		}
		id := strconv.Quote("sly-" + strconv.Itoa(int(cl.nextID.Add(1))))
		errObj := cl.rawCall(id, `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":`+params+`}`)
		if !contains(errObj, tc.code) || !contains(errObj, tc.why) {
			t.Errorf("tools/call with params %s answered %s, want %s mentioning %q", params, errObj, tc.code, tc.why)
		}
	}
	args := map[string]any{"ms": 1}
	params := map[string]any{"name": "sleep", "arguments": args}
	if meta != nil {
		params["_meta"] = meta
	}
	if res := cl.mustCall("tools/call", params); !contains(res, `"slept"`) {
		t.Fatalf("an allowed tool answers %s", res)
	}
}
