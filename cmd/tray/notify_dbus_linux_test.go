//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeNotifications is a real DBus service object that owns
// org.freedesktop.Notifications on a private session bus and records what
// it is asked to show. It stands in for the desktop's notification daemon
// (GNOME Shell, dunst, xfce4-notifyd…), which needs a display and a
// desktop session and so cannot run headless; everything up to it — the
// tray's godbus call, the bus, the method signature — is the real path.
type fakeNotifications struct {
	caps  []string
	notes chan shownNote
	ids   atomic.Uint32
}

type shownNote struct {
	App, Icon, Summary, Body string
	Hints                    map[string]dbus.Variant
	Timeout                  int32
}

func (f *fakeNotifications) GetCapabilities() ([]string, *dbus.Error) { return f.caps, nil }

func (f *fakeNotifications) Notify(app string, replaces uint32, icon, summary, body string,
	actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	select {
	case f.notes <- shownNote{App: app, Icon: icon, Summary: summary, Body: body, Hints: hints, Timeout: timeout}:
	default: // nobody reads: a test that does not care
	}
	return f.ids.Add(1), nil
}

func (f *fakeNotifications) CloseNotification(uint32) *dbus.Error { return nil }

func (f *fakeNotifications) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "tether-test", "tether", "1", "1.2", nil
}

// serveNotifications registers a fakeNotifications on the bus at addr.
func serveNotifications(t *testing.T, addr string, caps ...string) *fakeNotifications {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeNotifications{caps: caps, notes: make(chan shownNote, 32)}
	if err := conn.Export(f, notifyPath, notifyService); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(notifyService, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", notifyService, reply, err)
	}
	return f
}

// next returns the next notification whose body has want in it.
func (f *fakeNotifications) next(t *testing.T, want string, timeout time.Duration) shownNote {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n := <-f.notes:
			if strings.Contains(n.Body, want) {
				return n
			}
			t.Logf("other notification: %q: %q", n.Summary, n.Body)
		case <-deadline:
			t.Fatalf("no notification with %q within %v", want, timeout)
		}
	}
}

// TestNotifyOverDBus: notify's Linux path reaches a notification service
// on the session bus as the spec's Notify call, escaping the plain-text
// body only for a service that reads markup; with no service on the bus
// the error says so.
func TestNotifyOverDBus(t *testing.T) {
	needTool(t, "dbus-daemon", "dbus-daemon")
	const body = "Enter code BCDF-GHJK on relay.example.com (<your> browser & the page)."
	for _, tt := range []struct {
		name string
		caps []string
		want string
	}{
		{"plain", []string{"body"}, body},
		{"markup", []string{"body", "body-markup"}, "Enter code BCDF-GHJK on relay.example.com (&lt;your&gt; browser &amp; the page)."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := startBus(t)
			srv := serveNotifications(t, addr, tt.caps...)
			conn, err := dbus.Connect(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := notifyDBus(ctx, conn, "Tether: approve this computer", body); err != nil {
				t.Fatal(err)
			}
			n := srv.next(t, "BCDF-GHJK", 10*time.Second)
			if n.Body != tt.want || n.Summary != "Tether: approve this computer" || n.App != "Tether" || n.Icon != "tether" || n.Timeout != -1 {
				t.Fatalf("shown %+v, want body %q", n, tt.want)
			}
			if de := n.Hints["desktop-entry"]; de.Value() != "tether" {
				t.Fatalf("desktop-entry hint %v", de)
			}
		})
	}

	t.Run("no service", func(t *testing.T) {
		conn, err := dbus.Connect(startBareBus(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		err = notifyDBus(t.Context(), conn, "t", "b")
		if err == nil || !strings.Contains(err.Error(), "no notification service on the session bus") {
			t.Fatalf("err = %v", err)
		}
	})
}

// startBareBus is startBus with no service files: nothing can be started
// by DBus activation, whatever notification daemon the machine has
// installed.
func startBareBus(t *testing.T) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "bus.conf")
	if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, "--config-file="+conf)
}
