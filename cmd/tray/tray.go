package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"fyne.io/systray"

	"github.com/tether-dev/tether/app"
	"github.com/tether-dev/tether/assets"
	"github.com/tether-dev/tether/internal/logfile"
)

// tray ties the pieces together: it runs or attaches to an engine
// (supervise), follows its State, renders the menu once a second or on
// change (renderLoop), and runs clicked actions (actions.go).
type tray struct {
	paths app.Paths
	log   *slog.Logger
	inst  *instance
	notes *notifier

	ctx      context.Context // ends on Quit
	cancel   context.CancelFunc
	quitOnce sync.Once
	started  chan struct{} // closed by start
	supDone  chan struct{} // closed when supervise returns (own engine stopped)
	wake     chan struct{} // capacity 1: render now

	mu        sync.Mutex
	ctl       app.Control // nil while between engines
	attached  bool
	st        app.State
	haveState bool
	notice    string
	noticeAt  time.Time
	links     []pendingLink // tether:// links to confirm, oldest first
	login     bool
	stopOwn   func()        // stops the in-process engine and waits; nil when attached
	grace     time.Duration // how long to wait for another engine before starting one
	abortWait chan struct{} // capacity 1: end a grace wait early
}

// noticeFor is how long a notice line (the result of an action) stays.
const noticeFor = time.Minute

func newTray(paths app.Paths, log *slog.Logger, inst *instance) *tray {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tray{
		paths: paths, log: log, inst: inst,
		ctx: ctx, cancel: cancel,
		started: make(chan struct{}), supDone: make(chan struct{}),
		wake: make(chan struct{}, 1), abortWait: make(chan struct{}, 1),
	}
	t.notes = newNotifier(func(title, body string) {
		go func() {
			ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
			defer cancel()
			if err := notify(ctx, title, body); err != nil {
				t.log.Warn("desktop notification not shown", "title", title, "err", err)
			}
		}()
	})
	return t
}

// start runs when the tray is up (systray's onReady).
func (t *tray) start(signals context.Context) {
	systray.SetTitle("Tether")
	r := newRenderer(trayBackend{log: t.log}, t.click)
	t.login = loginItemEnabled(t.ctx)
	t.inst.serve(t.onHandOver)
	go func() {
		select {
		case <-signals.Done():
			t.quit()
		case <-t.ctx.Done():
		}
	}()
	close(t.started)
	go func() {
		defer close(t.supDone)
		t.supervise(t.ctx)
	}()
	go t.renderLoop(r)
}

// quit stops the in-process engine (servers stopped, relay closed) and
// then the tray. An attached engine (the service) keeps running.
func (t *tray) quit() {
	t.quitOnce.Do(func() {
		t.cancel()
		go func() {
			t.wait()
			systray.Quit()
		}()
	})
}

// wait blocks until the engine started by this tray has stopped.
func (t *tray) wait() {
	select {
	case <-t.started:
	default:
		return // never started
	}
	select {
	case <-t.supDone:
	case <-time.After(20 * time.Second):
		t.log.Error("the engine did not stop within 20 s; quitting anyway")
	}
}

func (t *tray) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// renderLoop redraws on every change and once a second (countdowns such as
// "retry in 8 s"); an unchanged menu costs no DBus traffic.
func (t *tray) renderLoop(r *renderer) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.render(t.model(time.Now()))
		select {
		case <-t.ctx.Done():
			return
		case <-t.wake:
		case <-tick.C:
		}
	}
}

// model is menuModel plus what only the tray knows: the start-at-login
// checkmark, the last action's notice and a tether:// link to confirm.
func (t *tray) model(now time.Time) Model {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.haveState {
		return Model{Icon: assets.Offline, Tooltip: "Tether — starting", Items: []Item{
			info("status", "Starting Tether…", ""), sep("sep-app"),
			{Key: actQuit, ID: actQuit, Label: "Quit Tether", Enabled: true},
		}}
	}
	m := menuModel(t.st, now, t.attached)
	if it := m.find(actLoginItem); it != nil {
		it.Checked = t.login
	}
	var extra []Item
	if t.notice != "" && now.Sub(t.noticeAt) < noticeFor {
		extra = append(extra, info("notice", clip(t.notice), t.notice))
	}
	if len(t.links) > 0 {
		l := t.links[0].link
		q := l.question()
		if n := len(t.links) - 1; n > 0 {
			word := "link"
			if n > 1 {
				word = "links"
			}
			q += fmt.Sprintf(" (%d more %s waiting)", n, word)
		}
		// Not clipped: the whole relay URL must show (a look-alike host
		// differs at its end); parseLink bounds its length.
		extra = append(extra, info("link", q, displayURL(l.relay)))
		// The risk is worked out from the state shown now, and Accept
		// confirms exactly what was shown.
		risk, err := linkRisk(l, t.st)
		t.links[0].riskShown = risk != "" && err == nil
		switch {
		case err != nil:
			extra = append(extra, info("link-risk", clip(err.Error()), err.Error()))
		case risk != "":
			extra = append(extra, info("link-risk", clip(risk), risk))
		}
		extra = append(extra,
			Item{Key: "link-accept", ID: "link-accept", Label: "Accept link and connect", Enabled: true},
			Item{Key: "link-dismiss", ID: "link-dismiss", Label: "Dismiss link", Enabled: true})
	}
	if len(extra) > 0 {
		// after the status line(s): before the Connect item
		for i, it := range m.Items {
			if it.Key == "connect" {
				m.Items = append(m.Items[:i:i], append(extra, m.Items[i:]...)...)
				break
			}
		}
	}
	return m
}

// setNotice shows the outcome of an action in the menu (and the log).
func (t *tray) setNotice(msg string) {
	t.mu.Lock()
	t.notice, t.noticeAt = msg, time.Now()
	t.mu.Unlock()
	t.poke()
}

// maxLinks bounds the queue: a page opening links in a loop cannot grow
// the tray without limit.
const maxLinks = 8

// pendingLink is a link waiting in the menu.
type pendingLink struct {
	link connectLink
	// riskShown is set when the menu showed the question with the risk of
	// sending a token bound to no relay to the link's relay: Accept then
	// confirms it (app.CheckLinkRelay's unboundOK).
	riskShown bool
}

// offerLink asks, in the menu, whether to apply a tether:// link. A link
// that arrives while another waits queues behind it: replacing the pending
// one would let a second page swap what the user is about to accept. Once
// the engine's state is known, a link whose relay may not have the token
// the engine would send there is refused here, before it is shown.
func (t *tray) offerLink(l connectLink) error {
	t.mu.Lock()
	defer t.poke()
	defer t.mu.Unlock()
	if t.haveState {
		if _, err := linkRisk(l, t.st); err != nil {
			return err
		}
	}
	for _, q := range t.links {
		if q.link.raw == l.raw {
			return nil
		}
	}
	if len(t.links) >= maxLinks {
		return fmt.Errorf("%d links already wait in the Tether menu; accept or dismiss them first", len(t.links))
	}
	t.links = append(t.links, pendingLink{link: l})
	return nil
}

// takeLink removes the link the menu shows (the oldest) and returns it.
func (t *tray) takeLink() (pendingLink, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.links) == 0 {
		return pendingLink{}, false
	}
	l := t.links[0]
	t.links = t.links[1:]
	return l, true
}

// onHandOver answers a second launch of the tray.
func (t *tray) onHandOver(req handOverRequest) (string, error) {
	if req.Link != "" {
		l, err := parseLink(req.Link)
		if err != nil {
			return "", err
		}
		if err := t.offerLink(l); err != nil {
			t.log.Warn("tether:// link refused", "relay", displayURL(l.relay), "err", err)
			t.setNotice("Link refused: " + err.Error())
			return "", err
		}
		t.log.Info("tether:// link waits in the menu", "relay", displayURL(l.relay), "dev", l.dev)
		t.notes.send("Tether", l.question()+" Open the Tether menu to accept.")
		return "Tether is already running; open its menu to accept the link (" + l.question() + ")", nil
	}
	t.notes.send("Tether is running", "Its icon is in the menu bar (system tray).")
	return fmt.Sprintf("Tether is already running (pid %d); its icon is in the menu bar (system tray).", os.Getpid()), nil
}

// supervise keeps the tray connected to an engine until ctx ends: the one
// already running for this user if there is one, else its own.
func (t *tray) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		t.mu.Lock()
		grace := t.grace
		t.grace = 0
		t.mu.Unlock()
		if c := t.dial(ctx, grace); c != nil {
			t.log.Info("attached to the running engine", "socket", c.Path())
			t.follow(ctx, c, true)
			c.Close()
			t.log.Info("the attached engine went away")
			t.mu.Lock()
			if t.grace == 0 {
				// It may be restarting (service restart): give it a moment
				// before taking over.
				t.grace = 3 * time.Second
			}
			t.mu.Unlock()
			continue
		}
		err := t.runOwn(ctx)
		var running *app.EngineRunningError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &running):
			t.mu.Lock()
			t.grace = 5 * time.Second // it exists but did not answer yet
			t.mu.Unlock()
		case err != nil:
			t.log.Error("engine stopped", "err", err)
			t.setNotice("Tether could not run: " + err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second): // retry delay
			}
		}
	}
}

// dial returns a client for a running engine, trying for up to d.
func (t *tray) dial(ctx context.Context, d time.Duration) *app.ControlClient {
	deadline := time.Now().Add(d)
	for {
		c, err := app.DialControl(ctx, t.paths.Socket)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		// No event announces a socket appearing; poll it.
		select {
		case <-ctx.Done():
			return nil
		case <-t.abortWait:
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runOwn runs the engine in this process until ctx ends or stopOwn, or
// returns at once when another engine holds the control socket.
func (t *tray) runOwn(ctx context.Context) error {
	engCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	eng := app.NewEngine(app.EngineOptions{
		Paths:   t.paths,
		Control: true,
		Version: version,
		Logger:  t.log,
		ServerLog: func(name string) (io.WriteCloser, error) {
			return logfile.ServerLog(t.paths.Logs, name)
		},
	})
	errc := make(chan error, 1)
	go func() { errc <- eng.Run(engCtx) }()
	select {
	case err := <-errc:
		return err
	case <-eng.Ready():
	}
	t.log.Info("engine running in the tray", "home", t.paths.Dir)
	stopped := make(chan struct{})
	t.mu.Lock()
	t.stopOwn = func() { cancel(); <-stopped }
	t.mu.Unlock()
	followed := make(chan struct{})
	go func() {
		t.follow(engCtx, eng, false)
		close(followed)
	}()
	err := <-errc
	cancel()
	<-followed
	t.mu.Lock()
	t.stopOwn = nil
	t.mu.Unlock()
	close(stopped)
	t.log.Info("engine stopped")
	return err
}

// follow shows ctl's states until its stream ends.
func (t *tray) follow(ctx context.Context, ctl app.Control, attached bool) {
	states, err := ctl.Subscribe(ctx)
	if err != nil {
		t.log.Error("follow engine state", "err", err)
		return
	}
	t.mu.Lock()
	t.ctl, t.attached = ctl, attached
	t.mu.Unlock()
	for st := range states {
		t.mu.Lock()
		t.st, t.haveState = st, true
		t.mu.Unlock()
		t.notes.update(st, time.Now())
		t.poke()
	}
	t.mu.Lock()
	if t.ctl == ctl {
		t.ctl = nil
	}
	t.mu.Unlock()
}
