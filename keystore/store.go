package keystore

import (
	"errors"
	"sync"
)

// Store is where a secret lives, keyed by account. Tether uses the relay URL
// as the account (see AccountFor), so tokens for two relays coexist.
type Store interface {
	Get(account string) (Token, error)
	Set(account string, t Token) error
	Delete(account string) error
}

var (
	// ErrNotFound: the store holds nothing for that account.
	ErrNotFound = errors.New("no token stored for this relay")

	// ErrUnavailable: the OS keychain cannot be used here (no Secret Service on
	// a headless Linux, a locked keyring, a Windows service account, …). Its
	// text is shown to users as is, so it says what to do instead.
	ErrUnavailable = errors.New("no OS keychain is reachable from this process; " +
		"on a headless machine give the token another way: " +
		"--token-file FILE or TETHER_TOKEN_FILE=FILE (a file only you can read: chmod 600 FILE), " +
		"TETHER_TOKEN=<token> in the environment, " +
		"or a systemd credential named tether-token (LoadCredential=tether-token:FILE in the unit)")

	// ErrTooBig: the token is larger than the store accepts.
	ErrTooBig = errors.New("token is too big to store")
)

// MaxTokenBytes bounds what any source or store accepts. Real bridge tokens
// are well under 2 KiB; the bound stops a wrong file from being read whole.
const MaxTokenBytes = 64 << 10

// Memory is an in-memory Store for tests of other packages. Its zero value is
// ready to use and it is safe for concurrent use.
type Memory struct {
	mu sync.Mutex
	m  map[string]Token
}

func (s *Memory) Get(account string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[account]
	if !ok {
		return "", ErrNotFound
	}
	return t, nil
}

func (s *Memory) Set(account string, t Token) error {
	if len(t) > MaxTokenBytes {
		return ErrTooBig
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Token)
	}
	s.m[account] = t
	return nil
}

func (s *Memory) Delete(account string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[account]; !ok {
		return ErrNotFound
	}
	delete(s.m, account)
	return nil
}
