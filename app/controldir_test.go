package app

import (
	"strings"
	"testing"
)

func TestControlDirVerdict(t *testing.T) {
	const me, other = "S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002"
	const svc = "S-1-5-80-1111" // NT SERVICE\tetherd, as the old install granted
	allow := func(sid string) dirACE { return dirACE{SID: sid, Name: "name-of-" + sid, Allow: true} }
	usual := []dirACE{allow(me), allow(sidLocalSystem), allow(sidAdministrators), allow(sidCreatorOwner)}
	for _, c := range []struct {
		name     string
		owner    string
		nullDACL bool
		aces     []dirACE
		want     string // "" = accepted, else a part of the error
	}{
		{"the %AppData% default", me, false, usual, ""},
		{"only me", me, false, []dirACE{allow(me)}, ""},
		{"empty list: nobody else", me, false, nil, ""},
		{"owned by another user", other, false, usual, "not owned by you"},
		{"no owner", "", false, usual, "not owned by you (nobody)"},
		{"NULL DACL", me, true, nil, "no access list"},
		{"service SID granted (the old install)", me, false, append(usual, allow(svc)), "grants access to name-of-" + svc},
		{"another user granted", me, false, append(usual, allow(other)), "grants access to name-of-" + other},
		{"Everyone granted", me, false, append(usual, allow("S-1-1-0")), "grants access to name-of-S-1-1-0"},
		{"deny entries are fine", me, false, append(usual, dirACE{SID: "S-1-1-0", Name: "Everyone"}), ""},
	} {
		err := controlDirVerdict(`C:\Users\me\AppData\Roaming\tether`, me, c.owner, "", c.nullDACL, c.aces, "FIX")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "FIX")):
			t.Errorf("%s: got %v, want an error with %q and the fix", c.name, err, c.want)
		}
	}
}
