package web

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tether-dev/tether/relay/store"
)

// Limits bound sign-in attempts (right or wrong), per account and per
// client address, each a token bucket: Burst attempts at once, refilled
// at one per Every.
type Limits struct {
	AccountEvery time.Duration // default 1 minute
	AccountBurst int           // default 5
	IPEvery      time.Duration // default 6 seconds
	IPBurst      int           // default 20
	// CeremonyEvery and CeremonyBurst bound, per client address, the
	// passkey "begin" requests that need no session (sign-in, sign-in
	// link): each writes a ceremony row, so they have a budget of their
	// own, apart from the attempts above.
	CeremonyEvery time.Duration // default 3 seconds
	CeremonyBurst int           // default 30
}

// attemptLimitsMax bounds the remembered buckets; past it they are all
// forgotten (a flood of addresses must not grow memory without end).
const attemptLimitsMax = 10000

type attemptLimits struct {
	l Limits

	mu       sync.Mutex
	account  map[string]*rate.Limiter
	ip       map[string]*rate.Limiter
	ceremony map[string]*rate.Limiter
}

func newAttemptLimits(l Limits) *attemptLimits {
	if l.AccountEvery <= 0 {
		l.AccountEvery = time.Minute
	}
	if l.AccountBurst <= 0 {
		l.AccountBurst = 5
	}
	if l.IPEvery <= 0 {
		l.IPEvery = 6 * time.Second
	}
	if l.IPBurst <= 0 {
		l.IPBurst = 20
	}
	if l.CeremonyEvery <= 0 {
		l.CeremonyEvery = 3 * time.Second
	}
	if l.CeremonyBurst <= 0 {
		l.CeremonyBurst = 30
	}
	return &attemptLimits{l: l, account: map[string]*rate.Limiter{}, ip: map[string]*rate.Limiter{},
		ceremony: map[string]*rate.Limiter{}}
}

func bucket(m map[string]*rate.Limiter, key string, every time.Duration, burst int) *rate.Limiter {
	if len(m) >= attemptLimitsMax {
		clear(m)
	}
	l, ok := m[key]
	if !ok {
		l = rate.NewLimiter(rate.Every(every), burst)
		m[key] = l
	}
	return l
}

// allow takes one attempt from both buckets, or says how long to wait.
func (a *attemptLimits) allow(account, ip string, now time.Time) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acc := bucket(a.account, account, a.l.AccountEvery, a.l.AccountBurst)
	byIP := bucket(a.ip, ip, a.l.IPEvery, a.l.IPBurst)
	ra, rb := acc.ReserveN(now, 1), byIP.ReserveN(now, 1)
	wait := max(ra.DelayFrom(now), rb.DelayFrom(now))
	if wait > 0 {
		ra.CancelAt(now)
		rb.CancelAt(now)
		return wait, false
	}
	return 0, true
}

// allowCeremony takes one from ip's ceremony bucket, or says how long to
// wait.
func (a *attemptLimits) allowCeremony(ip string, now time.Time) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := bucket(a.ceremony, ip, a.l.CeremonyEvery, a.l.CeremonyBurst).ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return wait, false
	}
	return 0, true
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// signInPage is the sign-in form; msg says why it is shown again.
func (w *Web) signInPage(rw http.ResponseWriter, r *http.Request, code int, msg, user string) {
	csrf := randomToken(32)
	w.setCookie(rw, r, preCSRFCookie, csrf, time.Hour)
	rw.Header().Set("Cache-Control", "no-store")
	ret := r.FormValue("return")
	if !localPath(ret) {
		ret = ""
	}
	w.render(rw, code, "signin", map[string]any{"CSRF": csrf, "Message": msg, "User": user, "Return": ret})
}

// localPath reports whether p is a path on this relay ("/oauth/authorize?…",
// "/device?…") that sign-in may return to: it must not name another host
// ("//evil", "/\evil", "https:…"), so an attacker's link cannot use the
// relay's sign-in to send a browser elsewhere.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return false
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == ""
}

// preCSRFOK checks a pre-session form: its field must equal its cookie.
func preCSRFOK(r *http.Request) bool {
	c, err := r.Cookie(preCSRFCookie)
	return err == nil && equalSecret(r.PostFormValue("csrf"), c.Value)
}

func (w *Web) handleHome(rw http.ResponseWriter, r *http.Request) {
	if _, _, ok := w.session(r); !ok {
		w.signInPage(rw, r, http.StatusOK, "", "")
		return
	}
	w.SignedIn(w.handleBridge).ServeHTTP(rw, r)
}

func (w *Web) handleSignIn(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		http.Error(rw, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
		return
	}
	user, pw := r.PostFormValue("user"), r.PostFormValue("password")
	if wait, ok := w.limits.allow(user, clientIP(r), w.now()); !ok {
		rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		w.signInPage(rw, r, http.StatusTooManyRequests, "Too many sign-in attempts. Try again in a minute.", user)
		return
	}
	u, hash, err := w.st.PasswordHash(r.Context(), user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.Warn("sign-in: reading the user failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	known := err == nil && hash != "" && u.Disabled.IsZero()
	if !known {
		hash = dummyHash() // the same work as a wrong password
	}
	match, err := checkPassword(hash, pw)
	if err != nil {
		w.log.Warn("sign-in: stored password hash unreadable", "user", user, "err", err)
	}
	if !known || !match || len(pw) > maxPassword {
		w.log.Info("sign-in refused", "user", user, "from", r.RemoteAddr)
		w.signInPage(rw, r, http.StatusUnauthorized, "Wrong user or password.", user)
		return
	}
	if err := w.startSession(rw, r, u.ID); err != nil {
		w.log.Warn("sign-in: starting the session failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	to := "/"
	if ret := r.PostFormValue("return"); localPath(ret) {
		to = ret // back to the consent or device page that sent the browser here
	}
	http.Redirect(rw, r, to, http.StatusSeeOther)
}

// handleLinkPage shows the set-password form of a sign-in link. It does
// not use the link: chat apps and mail scanners fetch links to preview
// them, and must not burn them.
func (w *Web) handleLinkPage(rw http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	l, err := w.st.SignInLink(r.Context(), hashSecret(code), w.now())
	if err != nil {
		w.linkGone(rw, r, err)
		return
	}
	csrf := randomToken(32)
	w.setCookie(rw, r, preCSRFCookie, csrf, time.Hour)
	rw.Header().Set("Cache-Control", "no-store")
	w.render(rw, http.StatusOK, "link", map[string]any{"CSRF": csrf, "Code": code, "User": l.UserID, "Min": minPassword})
}

func (w *Web) linkGone(rw http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrUsed) {
		w.log.Warn("sign-in link lookup failed", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.signInPage(rw, r, http.StatusGone, "This sign-in link was used already or has expired. Ask for a new one (tether-relay user add).", "")
}

// handleLinkSubmit uses the link: sets the password and signs in.
func (w *Web) handleLinkSubmit(rw http.ResponseWriter, r *http.Request) {
	if !preCSRFOK(r) {
		http.Error(rw, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
		return
	}
	code, pw := r.PostFormValue("code"), r.PostFormValue("password")
	if len(pw) < minPassword || len(pw) > maxPassword || pw != r.PostFormValue("password2") {
		l, err := w.st.SignInLink(r.Context(), hashSecret(code), w.now())
		if err != nil {
			w.linkGone(rw, r, err)
			return
		}
		csrf := randomToken(32)
		w.setCookie(rw, r, preCSRFCookie, csrf, time.Hour)
		w.render(rw, http.StatusBadRequest, "link", map[string]any{"CSRF": csrf, "Code": code, "User": l.UserID, "Min": minPassword,
			"Message": "The two passwords must match and be at least " + strconv.Itoa(minPassword) + " characters."})
		return
	}
	// Hashed before the link is used, so a failure here leaves it usable.
	hash, err := hashPassword(pw)
	if err != nil {
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	userID, err := w.st.UseSignInLink(r.Context(), hashSecret(code), w.now())
	if err != nil {
		w.linkGone(rw, r, err)
		return
	}
	if err := w.st.SetPassword(r.Context(), userID, hash); err != nil {
		w.log.Warn("setting a password failed", "user", userID, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.audit(r.Context(), userID, "web.password.set", userID, "")
	if err := w.startSession(rw, r, userID); err != nil {
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}
