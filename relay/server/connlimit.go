package server

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of LimitListener's caps, below the file limit a relay gets
// once main raised it and far above what its bridges and clients use.
const (
	DefaultMaxConns      = 8192
	DefaultMaxConnsPerIP = 256
)

// connLimitLogEvery spaces the "connection refused" warnings: a flood
// would otherwise write one line per connection.
const connLimitLogEvery = 10 * time.Second

// LimitListener caps the connections open at once, in total and per
// source address (0: no cap). A connection over a cap is closed as soon
// as it is accepted, before a byte is read; the first of each burst is
// logged. Behind a reverse proxy every connection comes from the proxy:
// exempt (nil: none) names the addresses the per-address cap does not
// apply to — the trusted proxies — which still count against the total.
func LimitListener(ln net.Listener, total, perIP int, exempt func(netip.Addr) bool, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, total: total, perIP: perIP, exempt: exempt, log: log, byIP: make(map[string]int)}
}

type limitListener struct {
	net.Listener
	total, perIP int
	exempt       func(netip.Addr) bool
	log          *slog.Logger

	mu      sync.Mutex
	open    int
	byIP    map[string]int
	lastLog time.Time
	dropped int // since the last log line
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		perIP := l.perIP
		if a, err := netip.ParseAddr(ip); err == nil && l.exempt != nil && l.exempt(a) {
			perIP = 0
		}
		if reason := l.take(ip, perIP); reason != "" {
			c.Close()
			l.refused(reason, ip)
			continue
		}
		return &limitConn{Conn: c, l: l, ip: ip}, nil
	}
}

// take counts a new connection from ip, or says which cap it is over.
func (l *limitListener) take(ip string, perIP int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total > 0 && l.open >= l.total:
		return "total"
	case perIP > 0 && l.byIP[ip] >= perIP:
		return "per address"
	}
	l.open++
	l.byIP[ip]++
	return ""
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

func (l *limitListener) refused(reason, ip string) {
	now := time.Now()
	l.mu.Lock()
	l.dropped++
	if now.Sub(l.lastLog) < connLimitLogEvery {
		l.mu.Unlock()
		return
	}
	n := l.dropped
	l.dropped, l.lastLog = 0, now
	l.mu.Unlock()
	if l.log != nil {
		l.log.Warn("connections refused: over the connection cap", "cap", reason, "from", ip, "refused", n,
			"maxConns", l.total, "maxConnsPerIP", l.perIP)
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
