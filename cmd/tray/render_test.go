package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/app"
)

// fakeMenu is a backend that keeps the menu as a tree, the way a dbusmenu
// host sees it (items in append order, hidden ones flagged).
type fakeMenu struct {
	root   []*fakeItem
	icon   string
	tip    string
	resets int
	calls  int // backend calls, to see that an unchanged model costs nothing
}

type fakeItem struct {
	it       Item
	hidden   bool
	click    func()
	children []*fakeItem
}

func (f *fakeMenu) add(parent handle, it Item, click func()) handle {
	f.calls++
	n := &fakeItem{it: it, click: click}
	if p, ok := parent.(*fakeItem); ok {
		p.children = append(p.children, n)
	} else {
		f.root = append(f.root, n)
	}
	return n
}
func (f *fakeMenu) update(h handle, it Item)          { f.calls++; h.(*fakeItem).it = it }
func (f *fakeMenu) setVisible(h handle, visible bool) { f.calls++; h.(*fakeItem).hidden = !visible }
func (f *fakeMenu) reset()                            { f.calls++; f.resets++; f.root = nil }
func (f *fakeMenu) setIcon(s string)                  { f.icon = s }
func (f *fakeMenu) setTooltip(s string)               { f.tip = s }

// visible renders what a person sees, one line per item, indented.
func (f *fakeMenu) visible() string {
	var b strings.Builder
	var walk func([]*fakeItem, int)
	walk = func(items []*fakeItem, depth int) {
		for _, n := range items {
			if n.hidden {
				continue
			}
			label := n.it.Label
			if n.it.Separator {
				label = "---"
			}
			fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), label)
			walk(n.children, depth+1)
		}
	}
	walk(f.root, 0)
	return b.String()
}

// modelText is the same view straight from the model.
func modelText(items []Item, depth int) string {
	var b strings.Builder
	for _, it := range items {
		label := it.Label
		if it.Separator {
			label = "---"
		}
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), label)
		b.WriteString(modelText(it.Children, depth+1))
	}
	return b.String()
}

func (f *fakeMenu) findLabel(label string) *fakeItem {
	var walk func([]*fakeItem) *fakeItem
	walk = func(items []*fakeItem) *fakeItem {
		for _, n := range items {
			if !n.hidden && n.it.Label == label {
				return n
			}
			if c := walk(n.children); c != nil {
				return c
			}
		}
		return nil
	}
	return walk(f.root)
}

// TestRenderSequence drives the renderer through a run of snapshots and
// checks after each that the menu shows exactly the model, and that only
// the expected changes needed a rebuild.
func TestRenderSequence(t *testing.T) {
	t.Parallel()
	f := &fakeMenu{}
	var clicks []string
	r := newRenderer(f, func(a string) { clicks = append(clicks, a) })

	step := func(name string, st app.State, wantResets int) {
		t.Helper()
		m := menuModel(st, now, false)
		r.render(m)
		if got, want := f.visible(), modelText(m.Items, 0); got != want {
			t.Fatalf("%s: menu shows\n%s\nwant\n%s", name, got, want)
		}
		if f.resets != wantResets {
			t.Fatalf("%s: %d rebuilds, want %d", name, f.resets, wantResets)
		}
		if f.icon != m.Icon || f.tip != m.Tooltip {
			t.Fatalf("%s: icon %q tooltip %q", name, f.icon, f.tip)
		}
	}

	st := base()
	step("first", st, 0)

	calls := f.calls
	step("same again", st, 0)
	if f.calls != calls {
		t.Errorf("an unchanged model made %d backend calls", f.calls-calls)
	}

	st.Servers[0].ToolCount, st.Servers[0].Tools = 3, []string{"a", "b", "c"}
	step("tool count changes in place", st, 0)

	st.Relay.Phase, st.Relay.LastError, st.Relay.NextRetry = "backoff", "refused", now.Add(8*time.Second)
	step("a line appears in the middle: one rebuild", st, 1)

	st.Relay.Phase, st.Relay.LastError = "connected", ""
	step("the line goes: hidden in place", st, 1)

	st.Relay.Phase, st.Relay.LastError = "backoff", "refused again"
	step("and comes back: shown in place", st, 1)

	st.Servers = append(st.Servers, app.ServerView{Name: "db", Enabled: true, Phase: "starting"})
	step("a server is added: a new line in the middle, rebuild", st, 2)

	st.Servers = st.Servers[:2]
	step("it goes again: hidden", st, 2)

	st.Servers = append(st.Servers, app.ServerView{Name: "db", Enabled: true, Phase: "ready", ToolCount: 1, Tools: []string{"q"}})
	step("and comes back: shown in place", st, 2)
	st.Servers = st.Servers[:2]
	step("gone", st, 2)

	st.Servers[0], st.Servers[1] = st.Servers[1], st.Servers[0]
	step("servers swap order: rebuild", st, 3)

	st.Calls = []app.CallRecord{{At: now, Server: "files", Tool: "read", Outcome: "ok"}}
	step("recent calls fill in place", st, 3)

	// A click runs the action the slot holds now, even after the slot
	// changed meaning (Connect became Disconnect in place).
	it := f.findLabel("Disconnect")
	if it == nil {
		t.Fatal("no Disconnect item")
	}
	it.click()
	st.Relay.Phase, st.Relay.Wanted = "offline", false
	step("disconnected", st, 3)
	f.findLabel("Connect").click()
	f.findLabel("Restart").click() // the first server's (files, after the swap)
	if got := strings.Join(clicks, ","); got != "disconnect,connect,restart:files" {
		t.Errorf("clicks = %s", got)
	}
}

// TestFits covers the planning rules directly.
func TestFits(t *testing.T) {
	t.Parallel()
	leaf := func(k string) Item { return Item{Key: k, Label: k} }
	r := newRenderer(&fakeMenu{}, nil)
	r.render(Model{Items: []Item{leaf("a"), sep("s"), leaf("b")}})
	cases := []struct {
		name  string
		items []Item
		want  bool
	}{
		{"same", []Item{leaf("a"), sep("s"), leaf("b")}, true},
		{"append at end", []Item{leaf("a"), sep("s"), leaf("b"), leaf("c")}, true},
		{"hide a leaf", []Item{sep("s"), leaf("b")}, true},
		{"hide a separator", []Item{leaf("a"), leaf("b")}, false},
		{"insert in the middle", []Item{leaf("a"), leaf("x"), sep("s"), leaf("b")}, false},
		{"reorder", []Item{leaf("b"), sep("s"), leaf("a")}, false},
		{"leaf becomes checkbox", []Item{{Key: "a", Checkbox: true}, sep("s"), leaf("b")}, false},
		{"leaf becomes submenu", []Item{{Key: "a", Children: []Item{leaf("x")}}, sep("s"), leaf("b")}, false},
	}
	for _, c := range cases {
		if got := fits(r.root, c.items); got != c.want {
			t.Errorf("%s: fits = %v, want %v", c.name, got, c.want)
		}
	}
}
