package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tether-dev/tether/relay/store"
)

// DefaultRevocationPoll is how often a relay asks the store for
// revocations made elsewhere (the `token revoke` command, another relay
// sharing the database).
const DefaultRevocationPoll = time.Second

// Revocations is the relay's view of the revoked tokens: a set in memory,
// so checking a token on every request costs a map lookup, filled from
// the store at start and kept current by asking the store every poll
// interval for revocations numbered above the last one seen (one indexed
// query that returns nothing while nothing changes). It works the same
// for one relay on SQLite and several relays on one PostgreSQL.
//
// It also collects when each token was last used and writes that to the
// store on the same tick, so no request waits on a database write.
type Revocations struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	ids     map[string]time.Time // revoked jti → when it expires anyway (zero: never)
	last    int64                // highest revocation id seen
	changed chan struct{}        // closed (and replaced) when ids grows
	used    map[string]time.Time

	done chan struct{} // closed when the poll loop has ended (its last write made)
}

// NewRevocations loads the revoked tokens from st and keeps them current
// every poll (0: DefaultRevocationPoll) until ctx ends.
func NewRevocations(ctx context.Context, st *store.Store, poll time.Duration, log *slog.Logger) (*Revocations, error) {
	if poll <= 0 {
		poll = DefaultRevocationPoll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Revocations{st: st, log: log, ids: map[string]time.Time{}, changed: make(chan struct{}), used: map[string]time.Time{},
		done: make(chan struct{})}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	go r.run(ctx, poll)
	return r, nil
}

// Done is closed when the poll loop has ended, after ctx, and written the
// last token uses: close the store after it.
func (r *Revocations) Done() <-chan struct{} { return r.done }

func (r *Revocations) run(ctx context.Context, poll time.Duration) {
	defer close(r.done)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last uses seen, on a context of their own: ctx is over.
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.flushUsed(flushCtx)
			cancel()
			return
		case <-t.C:
		}
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			// The set stays as it was: a database hiccup must not
			// un-revoke anything, and the next tick tries again.
			r.log.Warn("reading revocations from the store failed", "err", err)
		}
		r.flushUsed(ctx)
	}
}

// Refresh reads the revocations made since the last read. The poll loop
// calls it; so can anyone who needs a revocation applied at once.
func (r *Revocations) Refresh(ctx context.Context) error {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	// The query runs without the lock held: Has must never wait on the database.
	rs, err := r.st.RevocationsAfter(ctx, last)
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	if len(rs) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	grew := false
	for _, rv := range rs {
		if rv.ID > r.last {
			r.last = rv.ID
			r.ids[rv.JTI] = rv.Expires
			grew = true
		}
	}
	if grew {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return nil
}

// Revoke revokes jti in the store and applies it in this relay at once
// (other relays sharing the store within their poll interval).
func (r *Revocations) Revoke(ctx context.Context, jti string, at time.Time) error {
	if err := r.st.Revoke(ctx, jti, at); err != nil {
		return err
	}
	return r.Refresh(ctx)
}

// Changed returns a channel closed when the set next grows.
func (r *Revocations) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Has reports whether the token id (Claims.ID form: "j:<jti>") is revoked.
func (r *Revocations) Has(id string) bool {
	if r == nil {
		return false
	}
	jti, ok := cutJTI(id)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok = r.ids[jti]
	return ok
}

// pruneMargin is how long past its expiry a revoked token is still
// remembered: more than any clock skew the verifier allows, so a token is
// refused as expired before it is forgotten as revoked.
const pruneMargin = 10 * time.Minute

// Prune forgets the revocations of tokens that expired before now minus
// pruneMargin: the verifier refuses them as expired anyway. It returns
// how many it forgot. (The store keeps their rows: the audit record.)
func (r *Revocations) Prune(now time.Time) int {
	if r == nil {
		return 0
	}
	cutoff := now.Add(-pruneMargin)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for jti, exp := range r.ids {
		if !exp.IsZero() && exp.Before(cutoff) {
			delete(r.ids, jti)
			n++
		}
	}
	return n
}

// markUsed notes a use of the token id, written to the store on the next tick.
func (r *Revocations) markUsed(id string, at time.Time) {
	if r == nil {
		return
	}
	jti, ok := cutJTI(id)
	if !ok {
		return
	}
	r.mu.Lock()
	r.used[jti] = at
	r.mu.Unlock()
}

func (r *Revocations) flushUsed(ctx context.Context) {
	r.mu.Lock()
	used := r.used
	if len(used) == 0 {
		r.mu.Unlock()
		return
	}
	r.used = map[string]time.Time{}
	r.mu.Unlock()
	if err := r.st.TouchTokens(ctx, used); err != nil && ctx.Err() == nil {
		r.log.Warn("recording token use failed", "err", err)
	}
}

func cutJTI(id string) (string, bool) {
	if len(id) > 2 && id[:2] == "j:" {
		return id[2:], true
	}
	return "", false
}
