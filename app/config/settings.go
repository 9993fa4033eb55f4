package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tailscale/hujson"

	"github.com/tether-dev/tether/internal/atomicfile"
)

// Settings is settings.json: the non-secret settings of the engine. Like
// mcp.json it may hold comments, and keys Tether does not know are kept
// when Tether saves it (another version of Tether may know them).
type Settings struct {
	Relay       string `json:"relay,omitempty"`       // relay base URL, e.g. https://relay.example.com
	TAG         bool   `json:"tag,omitempty"`         // speak the TAG relay protocol
	DevID       string `json:"devId,omitempty"`       // dev id for TAG relays (Tether relays read it from the token)
	AutoConnect *bool  `json:"autoConnect,omitempty"` // nil = default (connect when a token exists)
	// Insecure allows an http:// (ws://) relay that is not on loopback: the
	// token and tool calls then cross the network unencrypted.
	Insecure bool `json:"insecure,omitempty"`
}

// errTokenInSettings is returned when settings.json holds a token: the file
// is not secret storage (it is readable by backups, sync tools, support
// bundles), and the engine must not silently use or drop a secret.
var errTokenInSettings = errors.New(`holds a "token": tokens do not belong in settings.json; remove it and store the token with "tetherd token set"`)

// LoadSettings reads settings.json. A missing file is the zero Settings.
func LoadSettings(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Settings{}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	s, err := parseSettings(data)
	if err != nil {
		return Settings{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func parseSettings(data []byte) (Settings, error) {
	root, std, err := parseJWCC(data)
	if err != nil {
		return Settings{}, err
	}
	obj, ok := root.Value.(*hujson.Object)
	if !ok {
		return Settings{}, errAt(data, root.StartOffset, nil, `settings must be an object, e.g. {"relay": "https://relay.example.com"}`)
	}
	if err := checkNoToken(data, obj); err != nil {
		return Settings{}, err
	}
	for _, key := range []string{"relay", "tag", "devId", "autoConnect", "insecure"} {
		if _, err := findMember(data, obj, key); err != nil {
			return Settings{}, err
		}
	}
	var s Settings
	if err := json.Unmarshal(std, &s); err != nil {
		off, msg := describeJSONError(err)
		return Settings{}, errAt(data, max(int(off), 0), err, msg)
	}
	if s.Relay != "" {
		if err := checkRelayURL(s.Relay); err != nil {
			v, _ := findMember(data, obj, "relay")
			return Settings{}, errAt(data, v.StartOffset, err, fmt.Sprintf(`"relay": %v`, err))
		}
	}
	return s, nil
}

func checkNoToken(data []byte, obj *hujson.Object) error {
	for _, m := range obj.Members {
		if strings.EqualFold(m.Name.Value.(hujson.Literal).String(), "token") {
			return errAt(data, m.Name.StartOffset, nil, errTokenInSettings.Error())
		}
	}
	return nil
}

func checkRelayURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("want an https:// (or http://, ws://, wss://) URL, not %q", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s)
	}
	return nil
}

// SaveSettings writes s to settings.json (mode 0600) atomically. An
// existing file is edited in place: its comments, its formatting and any
// keys Tether does not know stay; a zero field removes its key.
func SaveSettings(path string, s Settings) error {
	if s.Relay != "" {
		if err := checkRelayURL(s.Relay); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	fields, err := settingsFields(s)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("create settings folder: %w", err)
		}
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return fmt.Errorf("encode settings: %w", err)
		}
		return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
	}
	return editJWCC(path, 0o600, func(data []byte, root *hujson.Value) error {
		obj, ok := root.Value.(*hujson.Object)
		if !ok {
			return errAt(data, root.StartOffset, nil, "settings must be an object")
		}
		if err := checkNoToken(data, obj); err != nil {
			return err
		}
		lay := objLayout(data, root)
		for _, f := range fields {
			v, err := findMember(data, obj, f.key)
			if err != nil {
				return err
			}
			switch {
			case f.value == nil && v != nil:
				if err := root.Patch([]byte(`[{"op": "remove", "path": "/` + f.key + `"}]`)); err != nil {
					return fmt.Errorf("remove %q: %w", f.key, err)
				}
				keepTrailingComma(obj, lay)
			case f.value != nil && v != nil:
				v.Value = f.value.Value // keep the comments around the old value
			case f.value != nil:
				appendMember(obj, lay, f.key, *f.value)
			}
		}
		return nil
	})
}

type settingsField struct {
	key   string
	value *hujson.Value // nil: remove the key
}

// settingsFields lists every known key with its new value, in struct order.
func settingsFields(s Settings) ([]settingsField, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	var out []settingsField
	for _, key := range []string{"relay", "tag", "devId", "autoConnect", "insecure"} {
		f := settingsField{key: key}
		if raw, ok := set[key]; ok {
			v, err := hujson.Parse(raw)
			if err != nil {
				return nil, fmt.Errorf("encode settings: %w", err)
			}
			f.value = &v
		}
		out = append(out, f)
	}
	return out, nil
}
