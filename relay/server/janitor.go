package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// Janitor deletes the store's expired rows every few minutes: device and
// connect codes, sign-in links, web sessions, WebAuthn ceremonies, OAuth
// codes, refresh tokens, dead grants (with their refresh families) and
// dynamically registered clients unused for unusedClientAge;
// and prunes the in-memory revoked set of tokens that expired anyway.
// Revocation rows stay in the store as the audit record of what was
// revoked when (one small row per revoked token); only the relay's memory
// forgets them.
//
// Several relays sharing one PostgreSQL each run one: the deletes are
// idempotent and bounded, so they only share the work.
type Janitor struct {
	Store       *store.Store
	Revocations *Revocations // nil: nothing to prune
	Every       time.Duration
	Log         *slog.Logger
	now         func() time.Time
}

// DefaultJanitorEvery is how often the janitor sweeps.
const DefaultJanitorEvery = 5 * time.Minute

// janitorBatch is the most rows one DELETE removes; a sweep repeats a
// table's delete while it fills a batch, up to janitorRounds times (the
// rest waits for the next sweep rather than holding the database).
const (
	janitorBatch  = 500
	janitorRounds = 20
)

// unusedClientAge is how old a dynamically registered client with no
// grant (never approved, or every approval revoked or past its 90 days)
// must be before the janitor deletes it. Registration is open, so unused
// registrations would otherwise pile up; 30 days leaves a client that
// registered and then waits for its user's approval (or re-approval)
// plenty of time. A deleted client that comes back registers again, as
// clients do when the relay answers invalid_client.
const unusedClientAge = 30 * 24 * time.Hour

// expiryGrace keeps a code or link a little past its expiry, so a client
// polling at the edge hears "expired" rather than "unknown".
const expiryGrace = time.Hour

// Run sweeps at once and then every Every until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	every := j.Every
	if every <= 0 {
		every = DefaultJanitorEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		j.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep runs one pass over every table.
func (j *Janitor) Sweep(ctx context.Context) {
	log := j.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	if j.now != nil {
		now = j.now()
	}
	old := now.Add(-expiryGrace)
	tables := []struct {
		name string
		del  func() (int, error)
	}{
		{"device_codes", func() (int, error) { return j.Store.DeleteExpiredDeviceCodes(ctx, old, janitorBatch) }},
		{"sign_in_links", func() (int, error) { return j.Store.DeleteExpiredSignInLinks(ctx, old, janitorBatch) }},
		{"web_sessions", func() (int, error) { return j.Store.DeleteExpiredWebSessions(ctx, now, janitorBatch) }},
		{"webauthn_ceremonies", func() (int, error) { return j.Store.DeleteExpiredCeremonies(ctx, now, janitorBatch) }},
		{"oauth_codes", func() (int, error) { return j.Store.DeleteExpiredOAuthCodes(ctx, old, janitorBatch) }},
		{"oauth_refresh_tokens", func() (int, error) { return j.Store.DeleteExpiredOAuthRefresh(ctx, old, janitorBatch) }},
		// A grant is dead once revoked, or past its maximum age; its
		// access tokens (accessTTL) are long expired by expiryGrace.
		{"oauth_grants", func() (int, error) {
			return j.Store.DeleteDeadOAuthGrants(ctx, old, old.Add(-grantMaxAge), janitorBatch)
		}},
		// After the grants: a registered client whose last grant just
		// went is then unused.
		{"oauth_clients", func() (int, error) {
			return j.Store.DeleteUnusedOAuthClients(ctx, registeredClientPrefix, now.Add(-unusedClientAge), janitorBatch)
		}},
	}
	for _, tb := range tables {
		total := 0
		for range janitorRounds {
			n, err := tb.del()
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("janitor: deleting expired rows failed", "table", tb.name, "err", err)
				}
				break
			}
			total += n
			if n < janitorBatch {
				break
			}
		}
		if total > 0 {
			log.Debug("janitor: deleted expired rows", "table", tb.name, "rows", total)
		}
	}
	if n := j.Revocations.Prune(now); n > 0 {
		log.Debug("janitor: forgot revocations of expired tokens", "tokens", n)
	}
}
