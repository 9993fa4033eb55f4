package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tether-dev/tether/app"
)

// Single instance, and the way tether:// links reach the running tray. The
// engine's control socket already allows one engine per user, but a second
// tray must also not start (it would attach to the first tray's engine and
// show a second icon). The first tray serves a small HTTP API on tray.sock
// in the config folder, guarded like the control API (app.ListenOwnerOnly:
// folder 0700, socket 0600, the peer's uid checked):
//
//	POST /v1/links     {"link": "tether://connect?..."}  → {"message": "..."}
//	POST /v1/activate  (a plain second launch)            → {"message": "..."}
//
// The OS starts `tether tether://connect?...` for a clicked link, so the
// link (and a token in it) is in that process's argv, readable by the
// user's other processes (and, on most systems, in `ps` for everyone).
// That second process therefore hands the link over here in a request body
// at once and exits: the argv lives for milliseconds. It never re-executes
// anything nor passes the link on another command line. Unix sockets work
// on Windows 10+ too, where the control API uses them as well.

// instanceSocket is the file name of the tray's socket.
const instanceSocket = "tray.sock"

// maxHandOverBody caps a request to tray.sock: one link.
const maxHandOverBody = 16 << 10

// handOverRequest is what a second launch hands over: a tether:// link, or
// nothing (it was just started again).
type handOverRequest struct {
	Link string `json:"link,omitempty"`
}

// handOverReply is the answer.
type handOverReply struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// instance is this tray's claim on tray.sock.
type instance struct {
	ln   net.Listener
	path string
	log  *slog.Logger
	srv  *http.Server
}

// runningTray is returned by claimInstance when another tray answers.
type runningTray struct{ path string }

func (r *runningTray) Error() string { return "another tether tray is running" }

// claimInstance listens on tray.sock, or returns *runningTray when another
// tray answers there. A socket file left by a crashed tray is replaced.
func claimInstance(p app.Paths, log *slog.Logger) (*instance, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(p.Dir, instanceSocket)
	for range 2 {
		ln, err := app.ListenOwnerOnly(path, log)
		if err == nil {
			return &instance{ln: ln, path: path, log: log}, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, os.ErrExist) && !isAddrInUse(err) {
			return nil, fmt.Errorf("listen on %s: %w", path, err)
		}
		c, derr := net.DialTimeout("unix", path, 2*time.Second)
		if derr == nil {
			c.Close()
			return nil, &runningTray{path: path}
		}
		// Nobody answers: a stale socket file. Remove it and try once more.
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale %s: %w", path, rerr)
		}
	}
	return nil, fmt.Errorf("cannot claim %s", path)
}

// isAddrInUse covers systems whose bind error does not unwrap to EADDRINUSE.
func isAddrInUse(err error) bool {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return errors.Is(se.Err, syscall.EADDRINUSE)
	}
	return false
}

// serve starts answering second launches with handle, until Close.
// handle's error is the refusal the second launch prints (it then exits
// non-zero).
func (in *instance) serve(handle func(handOverRequest) (string, error)) {
	reply := func(w http.ResponseWriter, msg string, err error) {
		rep, status := handOverReply{Message: msg}, http.StatusOK
		if err != nil {
			rep, status = handOverReply{Error: err.Error()}, http.StatusUnprocessableEntity
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(rep)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/links", func(w http.ResponseWriter, r *http.Request) {
		var req handOverRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHandOverBody))
		if err != nil || json.Unmarshal(body, &req) != nil || req.Link == "" {
			// Never quote the body: it may hold a token.
			reply(w, "", errors.New(`body must be JSON {"link": "tether://connect?..."} under 16 KiB`))
			return
		}
		msg, err := handle(req)
		reply(w, msg, err)
	})
	mux.HandleFunc("POST /v1/activate", func(w http.ResponseWriter, r *http.Request) {
		msg, err := handle(handOverRequest{})
		reply(w, msg, err)
	})
	in.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second,
		ErrorLog:          slog.NewLogLogger(in.log.Handler(), slog.LevelDebug),
	}
	go in.srv.Serve(in.ln)
}

// Close stops listening and removes the socket file.
func (in *instance) Close() error {
	var err error
	if in.srv != nil {
		err = in.srv.Close() // closes the listener too
	} else {
		err = in.ln.Close()
	}
	os.Remove(in.path)
	return err
}

// handOver gives link (or nil) to the running tray and returns its answer.
// The link travels in the request body only.
func (r *runningTray) handOver(link *connectLink) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.path)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	path, body := "/v1/activate", []byte(nil)
	if link != nil {
		path = "/v1/links"
		body, _ = json.Marshal(handOverRequest{Link: link.raw})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://tray"+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", fmt.Errorf("reach the running tray: %w", err)
	}
	defer resp.Body.Close()
	var rep handOverReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&rep); err != nil {
		return "", fmt.Errorf("bad answer from the running tray (%s): %w", resp.Status, err)
	}
	if rep.Error != "" {
		return "", errors.New(rep.Error)
	}
	return rep.Message, nil
}
