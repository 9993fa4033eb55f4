package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestCheckTransport(t *testing.T) {
	for _, tc := range []struct {
		url     string
		refused bool
	}{
		{"https://relay.example.com", false},
		{"wss://relay.example.com", false},
		{"http://127.0.0.1:8080", false},
		{"ws://[::1]:8080", false},
		{"http://localhost:8080", false},
		{"http://relay.localhost", false},
		{"http://127.9.9.9", false},
		{"http://relay.example.com", true},
		{"ws://relay.example.com", true},
		{"HTTP://192.168.1.10:8080", true},
		{"http://localhost.example.com", true},
		{"http://[::2]:8080", true},
	} {
		err := CheckTransport(tc.url)
		if (err != nil) != tc.refused || (err != nil && !errors.Is(err, ErrInsecureRelay)) {
			t.Errorf("%s: err %v, want refused=%v", tc.url, err, tc.refused)
		}
	}
	err := CheckTransport("http://user:pw@relay.example.com/x?token=secret")
	for _, leak := range []string{"pw", "secret"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("message %q carries %q", err, leak)
		}
	}
	for _, want := range []string{"https://", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
}

// Run refuses before any dial (the token func is never asked), and the
// state says why; with Insecure it dials.
func TestRunRefusesInsecureRelay(t *testing.T) {
	var mu sync.Mutex
	var states []ConnState
	asked := false
	opts := ClientOptions{URL: "http://relay.invalid:1", Token: func(context.Context) (string, error) {
		mu.Lock()
		asked = true
		mu.Unlock()
		return "", ErrUnauthorized
	}, OnState: func(s ConnState) { mu.Lock(); states = append(states, s); mu.Unlock() }}
	err := NewClient(opts).Run(context.Background())
	if !errors.Is(err, ErrInsecureRelay) {
		t.Fatalf("Run: %v, want ErrInsecureRelay", err)
	}
	mu.Lock()
	if asked || len(states) != 1 || states[0].Phase != PhaseRejected || !strings.Contains(states[0].Reason, "--insecure") {
		t.Fatalf("token asked %v, states %+v", asked, states)
	}
	mu.Unlock()

	opts.Insecure = true
	err = NewClient(opts).Run(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Run with Insecure: %v, want the token func's ErrUnauthorized (it dialed)", err)
	}
}
