//go:build unix

package main

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestCertReloaderKeepsGoodPairAndReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, "relay.test", 1, certFile, keyFile)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		c, _ := r.getCertificate(nil)
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.SerialNumber.Int64()
	}
	// A broken certificate file does not replace the good pair.
	if err := os.WriteFile(certFile, []byte("not pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(); err == nil {
		t.Fatal("reload accepted a broken certificate")
	}
	if serial() != 1 {
		t.Fatal("broken reload replaced the pair")
	}

	// SIGHUP reloads. The new pair is written before the watcher starts,
	// so only the signal can explain the reload awaited below.
	ca.issue(t, "relay.test", 2, certFile, keyFile)
	reloaded := make(chan error, 16)
	r.onReload = func(err error) { reloaded <- err }
	stop := r.watch(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload after SIGHUP: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after SIGHUP")
	}
	if serial() != 2 {
		t.Fatalf("serial %d after SIGHUP, want 2", serial())
	}
}
