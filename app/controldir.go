package app

import "fmt"

// The decision behind checkControlDir on Windows (control_windows.go), kept
// free of Windows calls so it is tested on every OS: that file reads the
// folder's owner and access list and hands them here as SID strings.

// Well-known SIDs a control folder may grant access to besides its owner.
const (
	sidLocalSystem    = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidCreatorOwner   = "S-1-3-0"
)

// dirACE is one access control entry of the folder, as far as the verdict
// cares: whose it is, whether it allows (deny entries only take access
// away), and a readable name for the message.
type dirACE struct {
	SID   string
	Name  string // DOMAIN\account, or the SID when it cannot be looked up
	Allow bool
}

// controlDirVerdict refuses a control socket folder that me (the current
// account's SID) does not own, that has no access list at all (a NULL DACL
// lets everyone in), or whose access list allows anyone but me, SYSTEM,
// Administrators and CREATOR OWNER. owner/ownerName may be "" for no owner.
// fix is the command that repairs the folder, quoted in the error.
func controlDirVerdict(dir, me, owner, ownerName string, nullDACL bool, aces []dirACE, fix string) error {
	if owner == "" || owner != me {
		if ownerName == "" {
			ownerName = "nobody"
		}
		return fmt.Errorf("control socket folder %s is not owned by you (%s): use a folder of your own (set TETHER_HOME) or fix it with: %s", dir, ownerName, fix)
	}
	if nullDACL {
		return fmt.Errorf("control socket folder %s has no access list, so anyone could reach the control socket: fix it with: %s", dir, fix)
	}
	for _, a := range aces {
		if !a.Allow {
			continue
		}
		switch a.SID {
		case me, sidLocalSystem, sidAdministrators, sidCreatorOwner:
			continue
		}
		return fmt.Errorf("control socket folder %s grants access to %s, so other users could reach the control socket: fix it with: %s", dir, a.Name, fix)
	}
	return nil
}
