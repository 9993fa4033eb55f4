//go:build !darwin && !windows

package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Notifications on Linux and the BSDs go straight to the desktop's
// notification service over the session bus (the freedesktop.org Desktop
// Notifications spec, which notify-send speaks too), so nothing beyond the
// desktop itself needs to be installed.

const (
	notifyService = "org.freedesktop.Notifications"
	notifyPath    = dbus.ObjectPath("/org/freedesktop/Notifications")
)

// notifyDesktop shows a notification on the session bus's notification
// service.
func notifyDesktop(ctx context.Context, title, body string) error {
	conn, err := dbus.SessionBus() // shared with the keyring; never closed
	if err != nil {
		return fmt.Errorf("notification: no session bus: %w", err)
	}
	return notifyDBus(ctx, conn, title, body)
}

// notifyDBus calls Notify on conn's notification service. The body is
// plain text: when the service reads markup in bodies, &, < and > are
// escaped so it shows them as written.
func notifyDBus(ctx context.Context, conn *dbus.Conn, title, body string) error {
	obj := conn.Object(notifyService, notifyPath)
	var caps []string
	if err := obj.CallWithContext(ctx, notifyService+".GetCapabilities", 0).Store(&caps); err != nil {
		return notifyError(err)
	}
	if slices.Contains(caps, "body-markup") {
		body = markupEscaper.Replace(body)
	}
	hints := map[string]dbus.Variant{
		"desktop-entry": dbus.MakeVariant("tether"), // packaging/linux/tether.desktop
		"urgency":       dbus.MakeVariant(byte(1)),  // normal
	}
	var id uint32
	err := obj.CallWithContext(ctx, notifyService+".Notify", 0,
		"Tether", uint32(0), "tether", title, body, []string{}, hints, int32(-1)).Store(&id)
	if err != nil {
		return notifyError(err)
	}
	return nil
}

var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// notifyError says in words when the desktop has no notification service.
func notifyError(err error) error {
	var de dbus.Error
	if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.ServiceUnknown" {
		return errors.New("notification: no notification service on the session bus (" + notifyService + "); the desktop shows none")
	}
	return fmt.Errorf("notification: %w", err)
}
