package main

import "sync"

// The renderer copies a Model onto the tray menu.
//
// fyne.io/systray v1.12.2 can add items (always at the end of their parent),
// update, hide and show them, remove an item, and ResetMenu (remove all).
// It cannot insert an item between two others, and a separator has no
// handle, so it can be neither hidden nor removed on its own.
//
// Strategy: keep the menu's items as "slots" keyed like the Model (Item.Key
// per parent). For each snapshot the renderer first plans: every model item
// must map to a slot of the same kind, in the same order, or to a new slot
// appended after every used one; unused slots must be hideable (not
// separators). If the plan holds, the snapshot is applied in place: labels
// and flags updated, unused slots hidden, returning ones shown, new ones
// appended. Otherwise (a line appears in the middle for the first time, a
// server is added, servers swap order) the menu is rebuilt with ResetMenu.
// Hidden slots are kept, so each shape is rebuilt at most once: after a few
// snapshots the menu holds every line it has needed and changes in place,
// which matters because a rebuild closes the menu if it is open and gives
// every item a new id. Frequent changes (status, counts, tool names, recent
// calls) are always in place.

// handle is one backend menu item (nil for a separator).
type handle any

// backend is the menu toolkit. trayBackend (render_systray.go) is systray;
// tests use a fake.
type backend interface {
	// add appends an item (a separator when it.Separator) under parent
	// (nil: the top level); click runs on each click.
	add(parent handle, it Item, click func()) handle
	update(h handle, it Item)
	setVisible(h handle, visible bool)
	reset()
	setIcon(state string)
	setTooltip(text string)
}

type slotKind int

const (
	kindSeparator slotKind = iota
	kindLeaf
	kindCheckbox
	kindSubmenu
)

func kindOf(it Item) slotKind {
	switch {
	case it.Separator:
		return kindSeparator
	case len(it.Children) > 0:
		return kindSubmenu
	case it.Checkbox:
		return kindCheckbox
	}
	return kindLeaf
}

// slot is one item that exists in the menu.
type slot struct {
	key      string
	kind     slotKind
	h        handle
	visible  bool
	last     Item // as last applied, without children
	children []*slot

	mu     sync.Mutex
	action string // what a click does now
}

func (s *slot) clicked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.action
}

// renderer is used from one goroutine; clicks arrive on others.
type renderer struct {
	b        backend
	onClick  func(action string)
	root     []*slot
	icon     string
	tip      string
	rebuilds int // how many times the menu was rebuilt (after the first build)
	built    bool
}

func newRenderer(b backend, onClick func(string)) *renderer {
	return &renderer{b: b, onClick: onClick}
}

func (r *renderer) render(m Model) {
	if m.Icon != r.icon {
		r.b.setIcon(m.Icon)
		r.icon = m.Icon
	}
	if m.Tooltip != r.tip {
		r.b.setTooltip(m.Tooltip)
		r.tip = m.Tooltip
	}
	if r.built && !fits(r.root, m.Items) {
		r.b.reset()
		r.root = nil
		r.rebuilds++
	}
	r.built = true
	r.root = r.apply(nil, r.root, m.Items)
}

// fits says whether items can be shown on slots without a rebuild.
func fits(slots []*slot, items []Item) bool {
	index := make(map[string]int, len(slots))
	for i, s := range slots {
		index[s.key] = i
	}
	used := make([]bool, len(slots))
	last, next := -1, len(slots)
	for _, it := range items {
		j, ok := index[it.Key]
		if !ok {
			j = next // appended after everything that exists
			next++
		} else {
			if slots[j].kind != kindOf(it) {
				return false
			}
			if slots[j].kind == kindSubmenu && !fits(slots[j].children, it.Children) {
				return false
			}
			used[j] = true
		}
		if j <= last {
			return false
		}
		last = j
	}
	for i, s := range slots {
		if !used[i] && s.kind == kindSeparator {
			return false // a separator cannot be hidden
		}
	}
	return true
}

// apply shows items on slots (which fits has accepted) and returns the slots
// with any new ones appended.
func (r *renderer) apply(parent handle, slots []*slot, items []Item) []*slot {
	index := make(map[string]*slot, len(slots))
	for _, s := range slots {
		index[s.key] = s
	}
	used := map[*slot]bool{}
	for _, it := range items {
		s := index[it.Key]
		flat := it
		flat.Children = nil
		if s == nil {
			s = &slot{key: it.Key, kind: kindOf(it), visible: true, last: flat, action: it.ID}
			s.h = r.b.add(parent, flat, func() {
				if a := s.clicked(); a != "" && r.onClick != nil {
					r.onClick(a)
				}
			})
			slots = append(slots, s)
		} else {
			if !sameProps(s.last, flat) && s.kind != kindSeparator {
				r.b.update(s.h, flat)
				s.last = flat
			}
			if !s.visible {
				r.b.setVisible(s.h, true)
				s.visible = true
			}
			s.mu.Lock()
			s.action = it.ID
			s.mu.Unlock()
		}
		used[s] = true
		if s.kind == kindSubmenu {
			s.children = r.apply(s.h, s.children, it.Children)
		}
	}
	for _, s := range slots {
		if !used[s] && s.visible {
			r.b.setVisible(s.h, false)
			s.visible = false
			s.mu.Lock()
			s.action = "" // a click on a hidden item does nothing
			s.mu.Unlock()
		}
	}
	return slots
}

// sameProps compares what the backend shows of an item (not its children).
func sameProps(a, b Item) bool {
	return a.Key == b.Key && a.ID == b.ID && a.Label == b.Label && a.Tooltip == b.Tooltip &&
		a.Enabled == b.Enabled && a.Checkbox == b.Checkbox && a.Checked == b.Checked && a.Separator == b.Separator
}
