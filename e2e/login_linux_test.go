//go:build linux

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/testbin"
	"github.com/tether-dev/tether/relay/store"
)

// TestLoginBinary: the built `tetherd login` signs in against the built
// relay while `tetherd run` waits without a token; the code is approved
// in the relay's store (the web page's sign-in is not part of this test),
// the token reaches the running engine and the real Secret Service, and
// the bridge connects as the approving user.
func TestLoginBinary(t *testing.T) {
	bus := privateKeyring(t)
	r := startRelay(t)
	home := t.TempDir()
	env := append([]string{"TETHER_HOME=" + home, "TETHER_TOKEN=", "TETHER_TOKEN_FILE=", "TETHER_RELAY="}, bus...)
	writeFileT(t, filepath.Join(home, "settings.json"), `{"relay": "`+r.url()+`"}`)
	writeFileT(t, filepath.Join(home, "mcp.json"), `{"mcpServers": {"test": {"command": "`+testbin.Build(t, "./internal/testservers/mcpserver")+`"}}}`)
	d := startTetherd(t, "", env, "run")
	d.log.waitFor(t, 0, "no bridge token", 15*time.Second)

	// The relay's own store, shared with the running relay (SQLite in WAL
	// mode serves several processes).
	st, err := store.Open(t.Context(), store.DefaultLocation(r.secret))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser(t.Context(), store.User{ID: dev, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Build(t, "./cmd/svc"), "login", "--no-browser")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	codeRE := regexp.MustCompile(`shows the code  ([A-Z]{4}-[A-Z]{4})`)
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	approved := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		m := codeRE.FindStringSubmatch(sc.Text())
		if m == nil || approved {
			continue
		}
		dc, err := st.DeviceCodeByUserCode(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetDeviceState(ctx, dc.DeviceHash, store.DevicePending, store.DeviceApproved, dev); err != nil {
			t.Fatal(err)
		}
		approved = true
	}
	if err := cmd.Wait(); err != nil || !approved {
		t.Fatalf("tetherd login: %v (approved %v)\n%s%s", err, approved, out.String(), stderr.String())
	}
	for _, want := range []string{r.url() + "/device?user_code=", "Approved.", "Stored the bridge token for dev " + dev, "The running engine is connecting"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("login output lacks %q:\n%s", want, out.String())
		}
	}
	client := r.token(t, dev, "client")
	r.waitServing(t, dev, client, "test", 30*time.Second)

	// The token is in the Secret Service under the relay's URL, and it is
	// one the relay recorded (so it can be listed and revoked).
	lookup := exec.Command("secret-tool", "lookup", "service", "tether", "username", r.url())
	lookup.Env = append(os.Environ(), bus...)
	if got, err := lookup.Output(); err != nil || len(got) < 100 {
		t.Fatalf("secret-tool lookup: %v (%d bytes)", err, len(got))
	}
	toks, err := st.Tokens(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	bridges := 0
	for _, tk := range toks {
		if tk.Kind == store.KindBridge {
			bridges++
		}
	}
	if bridges != 1 {
		t.Fatalf("the relay recorded %d bridge tokens for %s, want 1: %+v", bridges, dev, toks)
	}
}
