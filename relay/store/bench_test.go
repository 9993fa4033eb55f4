package store

import (
	"strconv"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testpg"
)

// BenchmarkRevocationsAfterIdle is what each relay pays every poll
// interval while nothing is revoked: the query over 10,000 revocations
// that returns none.
func BenchmarkRevocationsAfterIdle(b *testing.B) {
	for _, c := range []struct {
		name string
		loc  func(b *testing.B) string
	}{
		{"sqlite", func(b *testing.B) string { return "sqlite:" + b.TempDir() + "/r.db" }},
		{"postgres", func(b *testing.B) string { return testpg.Start(b).DB(b) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := Open(b.Context(), c.loc(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range 10000 {
				jti := "j" + strconv.Itoa(i)
				if err := s.AddToken(b.Context(), Token{JTI: jti, Kind: KindClient, Dev: "d", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
				if err := s.Revoke(b.Context(), jti, t0); err != nil {
					b.Fatal(err)
				}
			}
			rs, err := s.RevocationsAfter(b.Context(), 0)
			if err != nil || len(rs) != 10000 {
				b.Fatalf("%d revocations, %v", len(rs), err)
			}
			last := rs[len(rs)-1].ID
			b.ResetTimer()
			for b.Loop() {
				if rs, err := s.RevocationsAfter(b.Context(), last); err != nil || len(rs) != 0 {
					b.Fatalf("%v, %v", rs, err)
				}
			}
		})
	}
}
