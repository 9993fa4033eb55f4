package keystore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// smallStore is a test double for Windows Credential Manager: a Memory that
// refuses values over 2,560 bytes, as go-keyring's wincred backend does.
type smallStore struct {
	Memory
	limit int
	mu    sync.Mutex
	sets  int
}

func (s *smallStore) Set(account string, t Token) error {
	if len(t) > s.limit {
		return fmt.Errorf("keychain write: %w", ErrTooBig)
	}
	s.mu.Lock()
	s.sets++
	s.mu.Unlock()
	return s.Memory.Set(account, t)
}

func (s *smallStore) accounts() []string {
	s.Memory.mu.Lock()
	defer s.Memory.mu.Unlock()
	var out []string
	for k := range s.Memory.m {
		out = append(out, k)
	}
	return out
}

// longToken is n bytes, different for every seed, with multi-byte runes so a
// split inside a UTF-8 sequence would show.
func longToken(n int, seed string) Token {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s-%d-é.", seed, i)
	}
	return Token(b.String()[:n-2] + "ok")
}

func TestChunkedRoundTrip(t *testing.T) {
	raw := &smallStore{limit: 2560}
	s := chunked{raw: raw, max: entryMax}
	const acct = "https://relay.example.com"
	tok := longToken(6000, "a")
	if err := raw.Set(acct, tok); !errors.Is(err, ErrTooBig) {
		t.Fatalf("the double must refuse 6000 bytes, got %v", err)
	}

	if err := s.Set(acct, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(acct)
	if err != nil || got != tok {
		t.Fatalf("Get = %d bytes, %v; want the 6000-byte token", len(got), err)
	}
	if n := len(raw.accounts()); n != 4 { // head + 3 parts of ≤2048 bytes
		t.Fatalf("entries = %v, want head + 3 parts", raw.accounts())
	}
	head, _ := raw.Get(acct)
	if !strings.HasPrefix(head.Reveal(), chunkPrefix+"3:") {
		t.Fatalf("head = %q", head.Reveal())
	}

	// A shorter split token removes the now-stale third part.
	tok2 := longToken(3000, "b")
	if err := s.Set(acct, tok2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(acct); err != nil || got != tok2 {
		t.Fatalf("after resplit: %v", err)
	}
	if _, err := raw.Get(partName(acct, 3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stale part 3 left behind: %v", err)
	}

	// A short token replaces a split one and leaves one plain entry.
	short := Token("eyJ.short.token-value")
	if err := s.Set(acct, short); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(acct); got != short {
		t.Fatalf("short: got %v", got)
	}
	if a := raw.accounts(); len(a) != 1 || a[0] != acct {
		t.Fatalf("entries after short Set = %v", a)
	}

	// Delete removes every entry; a second Delete is ErrNotFound.
	if err := s.Set(acct, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(acct); err != nil {
		t.Fatal(err)
	}
	if a := raw.accounts(); len(a) != 0 {
		t.Fatalf("entries after Delete = %v", a)
	}
	if err := s.Delete(acct); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := s.Get(acct); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestChunkedEdges(t *testing.T) {
	raw := &smallStore{limit: 2560}
	s := chunked{raw: raw, max: entryMax}

	// Exactly entryMax bytes is one plain entry; one more byte splits.
	for n, want := range map[int]int{entryMax: 1, entryMax + 1: 3} {
		acct := fmt.Sprint("acct-", n)
		tok := Token(strings.Repeat("x", n))
		if err := s.Set(acct, tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(acct)
		if err != nil || got != tok {
			t.Fatalf("%d bytes: %v", n, err)
		}
		count := 0
		for _, a := range raw.accounts() {
			if strings.HasPrefix(a, acct) {
				count++
			}
		}
		if count != want {
			t.Errorf("%d bytes: %d entries, want %d", n, count, want)
		}
	}

	// A token that looks like a head is stored split, so it reads back as itself.
	fake := Token(chunkPrefix + "2:0123456789abcdef")
	if err := s.Set("fake", fake); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("fake"); err != nil || got != fake {
		t.Fatalf("head-like token: %q %v", got, err)
	}

	// A lost part is reported, not glued into a wrong token.
	tok := longToken(5000, "c")
	if err := s.Set("lost", tok); err != nil {
		t.Fatal(err)
	}
	if err := raw.Delete(partName("lost", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("lost"); err == nil || !strings.Contains(err.Error(), "part 2 of 3 is missing") {
		t.Fatalf("lost part: %v", err)
	}
	// A part from another token (a Set that stopped half way) fails the digest.
	if err := raw.Memory.Set(partName("lost", 2), longToken(2048, "z")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("lost"); err == nil || !strings.Contains(err.Error(), "do not add up") {
		t.Fatalf("mixed parts: %v", err)
	}
	if err := s.Delete("lost"); err != nil {
		t.Fatalf("a damaged entry must still be deletable: %v", err)
	}

	// Over MaxTokenBytes is refused before anything is written.
	before := raw.sets
	if err := s.Set("huge", Token(strings.Repeat("x", MaxTokenBytes+1))); !errors.Is(err, ErrTooBig) {
		t.Fatalf("huge: %v", err)
	}
	if raw.sets != before {
		t.Fatal("huge token wrote entries")
	}

	// A store that refuses even one part says so with ErrTooBig.
	tiny := chunked{raw: &smallStore{limit: 100}, max: entryMax}
	if err := tiny.Set("a", longToken(3000, "d")); !errors.Is(err, ErrTooBig) || !strings.Contains(err.Error(), "refuses even") {
		t.Fatalf("tiny store: %v", err)
	}
}

func TestSplitKeepsRunes(t *testing.T) {
	s := strings.Repeat("é", 10) // 20 bytes, 2 per rune
	parts := split(s, 5)
	if strings.Join(parts, "") != s {
		t.Fatal("split lost bytes")
	}
	for _, p := range parts {
		if len(p) > 5 || !strings.HasPrefix(p, "é") {
			t.Fatalf("bad part %q in %q", p, parts)
		}
	}
}

func TestMemoryConcurrent(t *testing.T) {
	var m Memory
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			acct := fmt.Sprint("a", i)
			for j := range 100 {
				tok := Token(fmt.Sprint("tok", j))
				if err := m.Set(acct, tok); err != nil {
					t.Error(err)
				}
				if got, err := m.Get(acct); err != nil || got != tok {
					t.Errorf("got %v %v", got, err)
				}
			}
			if err := m.Delete(acct); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := m.Get("a0"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
