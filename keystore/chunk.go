package keystore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// entryMax is the largest value written to one keychain entry. Windows
// Credential Manager refuses secrets over 2,560 bytes; macOS's `security`
// (as go-keyring drives it) takes a 4,096-byte command holding the base64 of
// the value plus the service and account names, so 2,048 bytes leaves room for
// a long relay URL there. Longer tokens are split on every OS, so the
// splitting is the same code everywhere and is tested on Linux too.
const entryMax = 2048

// chunkPrefix starts the head entry of a split token:
// "tether-chunks:v1:<parts>:<first 16 hex of sha256 of the token>".
// The parts live in "<account>#1" … "<account>#<parts>". A token that itself
// starts with the prefix is always stored split, so reading is unambiguous.
const chunkPrefix = "tether-chunks:v1:"

// chunked splits values larger than max across numbered entries of raw.
// Single-entry values are stored as is, so a short token is one plain entry
// that other tools (secret-tool, Keychain Access) show as the token.
type chunked struct {
	raw Store
	max int
}

func partName(account string, i int) string { return account + "#" + strconv.Itoa(i) }

func digest(t Token) string {
	sum := sha256.Sum256([]byte(t.Reveal()))
	return hex.EncodeToString(sum[:8])
}

// head parses a head entry: parts is 0 for a plain (unsplit) value.
func parseHead(account string, v Token) (parts int, sum string, err error) {
	rest, ok := strings.CutPrefix(v.Reveal(), chunkPrefix)
	if !ok {
		return 0, "", nil
	}
	n, sum, ok := strings.Cut(rest, ":")
	parts, err = strconv.Atoi(n)
	if !ok || err != nil || parts < 1 || len(sum) != 16 {
		return 0, "", fmt.Errorf("keychain entry for %s is damaged (bad split-token header); store the token again", account)
	}
	return parts, sum, nil
}

func (c chunked) Get(account string) (Token, error) {
	head, err := c.raw.Get(account)
	if err != nil {
		return "", err
	}
	parts, sum, err := parseHead(account, head)
	if err != nil || parts == 0 {
		return head, err
	}
	var b strings.Builder
	for i := 1; i <= parts; i++ {
		p, err := c.raw.Get(partName(account, i))
		if errors.Is(err, ErrNotFound) {
			return "", fmt.Errorf("keychain entry for %s is incomplete (part %d of %d is missing); store the token again", account, i, parts)
		}
		if err != nil {
			return "", err
		}
		b.WriteString(p.Reveal())
	}
	t := Token(b.String())
	if digest(t) != sum {
		return "", fmt.Errorf("keychain entry for %s is damaged (its %d parts do not add up to the stored token); store the token again", account, parts)
	}
	return t, nil
}

func (c chunked) Set(account string, t Token) error {
	if len(t) > MaxTokenBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooBig, len(t), MaxTokenBytes)
	}
	oldParts, err := c.partsNow(account)
	if err != nil {
		return err
	}
	newParts := 0
	if len(t) <= c.max && !strings.HasPrefix(t.Reveal(), chunkPrefix) {
		if err := c.raw.Set(account, t); err != nil {
			return err
		}
	} else {
		// Parts first, head last: until the head is written, Get still sees
		// the previous token's head (and detects mixed parts by the digest).
		pieces := split(t.Reveal(), c.max)
		for i, p := range pieces {
			if err := c.raw.Set(partName(account, i+1), Token(p)); err != nil {
				if errors.Is(err, ErrTooBig) {
					return fmt.Errorf("%w: the keychain refuses even a %d-byte part (is the relay URL very long?): %w", ErrTooBig, len(p), err)
				}
				return err
			}
		}
		newParts = len(pieces)
		if err := c.raw.Set(account, Token(fmt.Sprintf("%s%d:%s", chunkPrefix, newParts, digest(t)))); err != nil {
			return err
		}
	}
	return c.deleteParts(account, newParts+1, oldParts)
}

func (c chunked) Delete(account string) error {
	parts, err := c.partsNow(account)
	if err != nil {
		return err
	}
	// Parts first: if this stops half way, the head still leads the next
	// Delete to what is left.
	if err := c.deleteParts(account, 1, parts); err != nil {
		return err
	}
	return c.raw.Delete(account)
}

// partsNow is how many parts the current entry has (0: none, or plain). A
// damaged head counts as 0 so Set and Delete can still replace or remove it.
func (c chunked) partsNow(account string) (int, error) {
	head, err := c.raw.Get(account)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	parts, _, err := parseHead(account, head)
	if err != nil {
		return 0, nil
	}
	return parts, nil
}

func (c chunked) deleteParts(account string, from, to int) error {
	for i := from; i <= to; i++ {
		if err := c.raw.Delete(partName(account, i)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// split cuts s into pieces of at most max bytes without cutting a UTF-8
// sequence in two (max must be at least utf8.UTFMax).
func split(s string, max int) []string {
	var out []string
	for len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	return append(out, s)
}
